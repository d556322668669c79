#!/bin/sh
# The MuseTalk engine's CPU tests need PyTorch and OpenCV (Debian: python3-torch python3-opencv).
# CI installs them and always runs these tests: there a missing module is a failure. On a
# developer's machine without them the tests are skipped, loudly, so `./fleetw test` still works
# on a machine that has only Node and npm.
PY="${ENGINE_TEST_PYTHON:-/usr/bin/python3}"
if [ -z "${CI:-}" ] && ! "$PY" -c 'import torch, cv2' 2>/dev/null; then
  echo "SKIPPED: the MuseTalk engine's CPU tests ($PY has no torch/cv2; apt-get install python3-torch python3-opencv). CI always runs them."
  exit 0
fi
exec "$PY" -m unittest test_engine test_avatar_cache
