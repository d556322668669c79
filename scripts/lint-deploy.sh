#!/usr/bin/env bash
# Lints the deploy files with linters from the npm registry (pinned, run through `pnpm dlx`):
#   Dockerfiles:   dockerfile-utils (the Dockerfile language service's linter; any finding fails)
#   compose files: dclint (compose-spec JSON-schema validation + best-practice rules,
#                  docker/.dclintrc.json; warnings fail too), on the committed ones and on what
#                  `fleet gpu-box init` writes for 1, 2 and 8 GPUs
#   inference server: python3 -m py_compile on every module; shell scripts: bash -n
# hadolint, the usual Dockerfile linter, ships as a Haskell binary; no registry this project can
# use carries it, so it is not run here.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 24 ] || ! command -v pnpm >/dev/null 2>&1; then
  exec "$root/fleetw" pnpm --dir "$root" exec bash "$root/scripts/lint-deploy.sh" "$@"
fi
cd "$root"
DOCKERFILE_UTILS="dockerfile-utils@0.16.3"
DCLINT="dclint@3.1.0"
failed=0

for dockerfile in docker/orchestrator.Dockerfile docker/worker.Dockerfile docker/inference/Dockerfile; do
  # dockerfile-utils exits 0 even when it reports problems: its output is the verdict.
  findings="$(pnpm dlx "$DOCKERFILE_UTILS" lint "$dockerfile" 2>&1 | grep -v -E '^(Progress|Packages):|^\++$' || true)"
  if [ -n "$findings" ]; then
    echo "lint-deploy: $dockerfile:"; echo "$findings"; failed=1
  else
    echo "lint-deploy: ok $dockerfile ($DOCKERFILE_UTILS)"
  fi
done

if pnpm dlx "$DCLINT" --color=false --max-warnings 0 -c docker/.dclintrc.json \
    docker/compose.vps.yaml docker/compose.gpu.yaml; then
  echo "lint-deploy: ok docker/compose.vps.yaml docker/compose.gpu.yaml ($DCLINT, compose-spec schema)"
else
  echo "lint-deploy: compose files have problems ($DCLINT)"; failed=1
fi

# The compose files `fleet gpu-box init` writes for boxes of 1, 2 and 8 GPUs, through the same
# schema lint. They are written next to the real ones (docker/), as an operator's would be, so
# relative paths resolve the same way, and removed afterwards.
pnpm --filter "@fleet/cli..." build >/dev/null
generated=()
trap 'rm -f "${generated[@]}"' EXIT
for gpus in 0 0,1 0-7; do
  file="docker/.lint-gpu-box-${gpus//[,-]/_}.yaml"
  generated+=("$file")
  node apps/cli/dist/main.js gpu-box init --gpus "$gpus" --box lint-box --out "$file" >/dev/null
done
if pnpm dlx "$DCLINT" --color=false --max-warnings 0 -c docker/.dclintrc.json "${generated[@]}"; then
  echo "lint-deploy: ok fleet gpu-box init output for 1, 2 and 8 GPUs ($DCLINT, compose-spec schema)"
else
  echo "lint-deploy: generated GPU-box compose files have problems ($DCLINT)"; failed=1
fi

# What py_compile checks, without leaving __pycache__ behind.
if python3 - docker/inference/*.py docker/inference/checks/*.py <<'PY'
import sys
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as handle:
        compile(handle.read(), path, "exec")
PY
then
  echo "lint-deploy: ok docker/inference/*.py compile"
else
  failed=1
fi

for script in scripts/build-bundle.sh scripts/check-bundles.sh scripts/lint-deploy.sh scripts/gpu-smoke.sh docker/inference/fetch-weights.sh; do
  bash -n "$script" || { echo "lint-deploy: $script has a syntax error"; failed=1; }
done
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck scripts/build-bundle.sh scripts/check-bundles.sh scripts/lint-deploy.sh scripts/gpu-smoke.sh docker/inference/fetch-weights.sh || failed=1
fi

if [ "$failed" -ne 0 ]; then
  echo "lint-deploy: FAILED" >&2
  exit 1
fi
echo "lint-deploy: all deploy files pass"
