#!/usr/bin/env bash
# Builds one app and writes its production bundle: dist/ + production node_modules only, plus
# the operator CLI (cli/, with bin/fleet, which the images put on PATH).
#
#   scripts/build-bundle.sh <orchestrator|worker> <outdir>
#
# The Dockerfiles (docker/*.Dockerfile) call exactly this, and so does CI
# (scripts/check-bundles.sh), so what CI starts is what the images would run:
#   node <outdir>/dist/main.js
#
# Needs Node 24 and the pinned pnpm on PATH; run from a plain shell it re-enters itself through
# ./fleetw, which provides both. BUNDLE_SKIP_INSTALL=1 skips `pnpm install` (dependencies already
# installed from the same lockfile).
set -euo pipefail

usage() { echo "usage: $0 <orchestrator|worker> <outdir>" >&2; exit 2; }
[ $# -eq 2 ] || usage
app="$1"
out="$2"
case "$app" in orchestrator|worker) ;; *) usage ;; esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 24 ] || ! command -v pnpm >/dev/null 2>&1; then
  [ -x "$root/fleetw" ] || { echo "build-bundle: needs Node 24 and pnpm on PATH" >&2; exit 1; }
  exec "$root/fleetw" pnpm --dir "$root" exec bash "$root/scripts/build-bundle.sh" "$@"
fi

case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$root"
echo "build-bundle: @fleet/$app -> $out (node $(node --version), pnpm $(pnpm --version))"

if [ "${BUNDLE_SKIP_INSTALL:-0}" != "1" ]; then
  # The lockfile is committed: a bundle must never resolve versions of its own.
  pnpm install --frozen-lockfile
fi
pnpm --filter "@fleet/$app..." --filter "@fleet/cli..." build
rm -rf "$out"
# pnpm 10 deploys a non-injected workspace only with --legacy; it still installs the versions in
# pnpm-lock.yaml, and copies each workspace dependency (dist included) into the bundle.
pnpm --filter "@fleet/$app" deploy --prod --legacy "$out"
# The operator CLI ships in both images, so `docker compose exec <service> fleet ...` checks the
# box with the container's own environment, network and volumes (no checkout, no env-file merge).
pnpm --filter "@fleet/cli" deploy --prod --legacy "$out/cli"
mkdir -p "$out/bin"
if [ "$app" = orchestrator ]; then
  # Defaults: this container's orchestrator, its INTERNAL_API_KEY, and its first public key.
  cat > "$out/bin/fleet" <<'SH'
#!/bin/sh
# fleet inside the orchestrator image (scripts/build-bundle.sh): talks to this container's own
# orchestrator with the keys it already has; FLEET_URL / FLEET_API_KEY / flags override.
bundle=$(cd "$(dirname "$0")/.." && pwd)
: "${FLEET_URL:=http://127.0.0.1:${PORT:-8080}}"
if [ -z "${FLEET_API_KEY:-}" ] && [ -n "${PUBLIC_API_KEYS:-}" ]; then FLEET_API_KEY=${PUBLIC_API_KEYS%%,*}; fi
export FLEET_URL FLEET_API_KEY
exec node "$bundle/cli/dist/main.js" "$@"
SH
else
  cat > "$out/bin/fleet" <<'SH'
#!/bin/sh
# fleet inside the worker image (scripts/build-bundle.sh): `fleet doctor` reads the worker's own
# environment; the other commands talk to the worker's orchestrator with its INTERNAL_API_KEY.
bundle=$(cd "$(dirname "$0")/.." && pwd)
: "${FLEET_URL:=${BUFFER_ORCHESTRATOR_BASE_URL:-${ORCHESTRATOR_BASE_URL:-}}}"
if [ -n "$FLEET_URL" ]; then export FLEET_URL; else unset FLEET_URL; fi
exec node "$bundle/cli/dist/main.js" "$@"
SH
fi
chmod 0755 "$out/bin/fleet"

# A bundle that would crash at start must fail here, not in a container.
for required in dist/main.js node_modules/@fleet/contract/dist/index.js cli/dist/main.js cli/node_modules/@fleet/contract/dist/index.js bin/fleet; do
  [ -f "$out/$required" ] || { echo "build-bundle: $out/$required is missing" >&2; exit 1; }
done
if ! "$out/bin/fleet" --help >/dev/null; then
  echo "build-bundle: $out/bin/fleet --help failed" >&2
  exit 1
fi
if [ -d "$out/node_modules/typescript" ] || [ -d "$out/node_modules/vitest" ] || [ -d "$out/cli/node_modules/vitest" ]; then
  echo "build-bundle: dev dependencies leaked into the bundle" >&2
  exit 1
fi
echo "build-bundle: ok $(du -sh "$out" | cut -f1) in $out"
