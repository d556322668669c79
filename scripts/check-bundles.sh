#!/usr/bin/env bash
# CI's proof of the deploy images without a Docker engine: builds both bundles with the script
# the Dockerfiles call (scripts/build-bundle.sh), then starts them as the images would, with the
# compose files' environment, and checks health, the worker's heartbeat, one job end to end and a
# clean SIGTERM stop (scripts/check-bundles-run.mjs). Exits non-zero with a message on any failure.
#
#   scripts/check-bundles.sh [bundles-dir]       (default: a temp dir, removed afterwards)
#
# Needs python3. PostgreSQL: BUNDLE_CHECK_DATABASE_URL (a database is created and dropped on it),
# else a throwaway server from the npm-shipped binaries; ffmpeg/ffprobe: the system's or the
# npm-shipped builds (@fleet/media-tools). BUNDLE_SKIP_INSTALL=1 as in build-bundle.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 24 ] || ! command -v pnpm >/dev/null 2>&1; then
  exec "$root/fleetw" pnpm --dir "$root" exec bash "$root/scripts/check-bundles.sh" "$@"
fi

for tool in python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "check-bundles: FAILED: $tool is not installed" >&2; exit 1; }
done

if [ $# -ge 1 ]; then
  out="$1"
else
  out="$(mktemp -d "${TMPDIR:-/tmp}/fleet-bundles-XXXXXX")"
  trap 'rm -rf "$out"' EXIT
fi

for app in orchestrator worker; do
  if ! bash "$root/scripts/build-bundle.sh" "$app" "$out/$app"; then
    echo "check-bundles: FAILED: scripts/build-bundle.sh $app did not produce a bundle" >&2
    exit 1
  fi
  # build-bundle installs once; the second bundle reuses it.
  export BUNDLE_SKIP_INSTALL=1
done
# The check borrows the B2 test server, file server and media helpers from @fleet/testing.
(cd "$root" && pnpm --filter "@fleet/testing..." build >/dev/null)

node "$root/scripts/check-bundles-run.mjs" "$out"
