#!/usr/bin/env bash
# Proves the README's two commands on a machine with no ffmpeg, no ffprobe, no PostgreSQL and
# nothing on 127.0.0.1:5432, without needing such a machine: a private mount + network namespace
# hides them from everything started inside it (docs/bare-machine.md).
#
#   sudo scripts/check-bare-machine.sh                       start + demo, then ./fleetw test
#   sudo scripts/check-bare-machine.sh --filter=@fleet/testing --filter=@fleet/orchestrator
#                                                            start + demo, then only those packages' tests
#   sudo scripts/check-bare-machine.sh --no-tests            start + demo only
#
# Needs root (unshare) and a checkout whose `pnpm install` already ran: inside, the network has
# only a loopback interface, so nothing is fetched (the pnpm store and .tools are read as they are).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"

if [ "${FLEET_BARE_INSIDE:-}" != "1" ]; then
  [ "$(id -u)" = 0 ] || { echo "check-bare-machine: needs root for unshare" >&2; exit 2; }
  exec env -u TEST_DATABASE_URL -u DOCKER_HOST -u FFMPEG_PATH -u FFPROBE_PATH -u PG_BIN_DIR -u DATABASE_URL \
    FLEET_BARE_INSIDE=1 unshare --mount --net --propagation private -- "$0" "$@"
fi

# --- inside the namespaces -----------------------------------------------------------------
ip link set lo up
hide_dir() { [ -d "$1" ] && mount -t tmpfs -o size=1m,mode=0755 tmpfs "$1"; return 0; }
hide_file() { [ -e "$1" ] && mount --bind /dev/null "$1"; return 0; }

# ffmpeg/ffprobe wherever a package manager puts them; /dev/null over a file is not executable.
for dir in /usr/bin /usr/local/bin /bin; do
  for tool in ffmpeg ffprobe; do hide_file "$dir/$tool"; done
done
# Every PostgreSQL binary: Debian's server and client trees, and its wrappers in /usr/bin
# (pg_ctlcluster, psql, pg_isready... all point into /usr/share/postgresql-common).
for dir in /usr/lib/postgresql /usr/share/postgresql-common /usr/share/postgresql; do hide_dir "$dir"; done
for f in /usr/bin/pg_* /usr/bin/psql /usr/bin/postgres /usr/bin/initdb; do hide_file "$f"; done
# A fresh machine has no `postgres` OS user either: hide it, so the root path (run as nobody) is
# the one exercised.
grep -v '^postgres:' /etc/passwd > /tmp/fleet-bare-passwd
mount --bind /tmp/fleet-bare-passwd /etc/passwd
# No Docker engine.
hide_file /var/run/docker.sock

echo "== inside: what a bare machine has"
for tool in ffmpeg ffprobe pg_ctl initdb postgres psql pg_isready; do
  # bash's `command -v` still names a hidden file; what matters is that nothing runs.
  if found="$(command -v "$tool")" && [ -x "$found" ] && [ -f "$found" ]; then echo "  $tool: FOUND at $found"; exit 1; fi
  echo "  $tool: none"
done
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then echo "  something listens on 5432" >&2; exit 1; fi
echo "  127.0.0.1:5432: nothing listens"
getent passwd postgres >/dev/null && { echo "  a postgres user exists" >&2; exit 1; }
echo "  postgres OS user: none"

run_tests=1
test_args=()
for arg in "$@"; do
  if [ "$arg" = "--no-tests" ]; then run_tests=0; else test_args+=("$arg"); fi
done

data="$(mktemp -d /tmp/fleet-bare-data-XXXXXX)"
log="$data/start.log"
echo "== ./fleetw start (data dir $data)"
cd "$root"
./fleetw start --data-dir "$data" --port 0 --worker-port 0 >"$log" 2>&1 &
start_pid=$!
stop_start() { kill -TERM "$start_pid" 2>/dev/null && wait "$start_pid" 2>/dev/null; return 0; }
trap stop_start EXIT
for _ in $(seq 1 600); do
  grep -q "Fleet is running" "$log" && break
  kill -0 "$start_pid" 2>/dev/null || { cat "$log"; echo "./fleetw start exited" >&2; exit 1; }
  sleep 1
done
grep -q "Fleet is running" "$log" || { tail -50 "$log"; echo "./fleetw start did not come up in 10 min" >&2; exit 1; }
grep -E "media_tools" "$log" || true

echo "== ./fleetw fleet demo"
FLEET_DATA_DIR="$data" ./fleetw fleet demo
FLEET_DATA_DIR="$data" ./fleetw fleet doctor || true
stop_start
trap - EXIT
rm -rf "$data"

if [ "$run_tests" = 1 ]; then
  echo "== ./fleetw test ${test_args[*]:-}"
  ./fleetw test "${test_args[@]}"
fi
echo "== bare machine check passed"
