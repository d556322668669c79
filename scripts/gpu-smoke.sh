#!/usr/bin/env bash
# The first thing to run on a GPU box (and whenever we have a GPU): builds and starts the MuseTalk
# inference container, runs one short job from a 25 fps and one from a 29.97 fps version of a
# talking-head clip through the worker's own `http` driver, and checks that each output lasts as
# long as the voice (within one frame, at 25 fps) and that faces were found; then the 25 fps clip
# once more, which must be an avatar-cache hit (its wall time over generation time is the cache's
# figure: target <= 1.2). Prints, per job, generation time vs wall time, PyTorch's peak VRAM, and
# at the end nvidia-smi's peak memory for the box.
#
#   scripts/gpu-smoke.sh <talking-head clip> [voice file]
#
# The clip must show a face (a few seconds is enough; it is cut to 4 s). Without a voice file a
# 3 s tone is used (lips then barely move, which is fine for a smoke test). Environment:
#   FLEET_INFERENCE_IMAGE  image to run (default fleet-inference-musetalk:v15)
#   SKIP_BUILD=1           use the image as it is instead of building docker/inference
#   INFERENCE_PORT         port on the host network (default 5055, so a running box is not disturbed)
#   BATCH_SIZE             UNet batch (default 8; 4 on 8 GB cards)
# Needs docker with the NVIDIA Container Toolkit, nvidia-smi, ffmpeg/ffprobe; Node comes via ./fleetw.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clip="${1:-}"
voice_in="${2:-}"
if [ -z "$clip" ] || [ ! -f "$clip" ]; then
  echo "usage: scripts/gpu-smoke.sh <talking-head clip> [voice file]" >&2
  exit 2
fi
image="${FLEET_INFERENCE_IMAGE:-fleet-inference-musetalk:v15}"
port="${INFERENCE_PORT:-5055}"
for tool in docker nvidia-smi ffmpeg ffprobe; do
  command -v "$tool" >/dev/null 2>&1 || { echo "gpu-smoke: FAILED: $tool is not installed" >&2; exit 1; }
done

work="$(mktemp -d /tmp/fleet-gpu-smoke.XXXXXX)"
chmod 0777 "$work"  # the container runs as uid 1000
name="fleet-gpu-smoke-$$"
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building the worker's driver (./fleetw pnpm build)"
"$root/fleetw" pnpm --dir "$root" install --frozen-lockfile >/dev/null
"$root/fleetw" pnpm --dir "$root" --filter @fleet/worker... build >/dev/null

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  echo "== building $image (docker/inference; includes the CPU load check)"
  docker build -t "$image" "$root/docker/inference"
fi

echo "== media"
ffmpeg -v error -y -i "$clip" -t 4 -an -vf fps=25 -c:v libx264 -pix_fmt yuv420p "$work/avatar-25fps.mp4"
ffmpeg -v error -y -i "$clip" -t 4 -an -vf fps=30000/1001 -c:v libx264 -pix_fmt yuv420p "$work/avatar-29.97fps.mp4"
if [ -n "$voice_in" ]; then
  ffmpeg -v error -y -i "$voice_in" -t 6 -vn -ac 1 -ar 44100 "$work/voice.wav"
else
  ffmpeg -v error -y -f lavfi -i "sine=frequency=220:duration=3" -ar 44100 "$work/voice.wav"
fi
chmod -R a+rw "$work"

echo "== starting the inference container on 127.0.0.1:$port"
docker run -d --name "$name" --gpus all --shm-size=8g --network host \
  -e INFERENCE_PORT="$port" -e INFERENCE_WORK_ROOT="$work" -e INFERENCE_JOBS_DIR="$work/.inference" \
  -e INFERENCE_AVATAR_CACHE_DIR="$work/.avatar-cache" \
  -e BATCH_SIZE="${BATCH_SIZE:-8}" -v "$work:$work" "$image" >/dev/null
deadline=$((SECONDS + 600))
status=""
while [ "$SECONDS" -lt "$deadline" ]; do
  status="$(curl -fsS "http://127.0.0.1:$port/health-check" 2>/dev/null | sed -n 's/.*"status": *"\([A-Z_]*\)".*/\1/p' || true)"
  [ "$status" = "READY" ] && break
  if [ "$status" = "SETUP_FAILED" ]; then
    curl -fsS "http://127.0.0.1:$port/health-check" >&2 || true
    docker logs --tail 50 "$name" >&2
    echo "gpu-smoke: FAILED: the engine did not load" >&2
    exit 1
  fi
  sleep 2
done
[ "$status" = "READY" ] || { docker logs --tail 50 "$name" >&2; echo "gpu-smoke: FAILED: not READY after 600 s" >&2; exit 1; }
curl -fsS "http://127.0.0.1:$port/health-check"; echo

# The box's memory as nvidia-smi sees it (PyTorch's own peak is in the job metrics).
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$work/vram.csv" &
sampler=$!

echo "== jobs through the worker's http driver"
result=0
"$root/fleetw" node "$root/scripts/gpu-smoke-jobs.mjs" "http://127.0.0.1:$port" "$work" "$work/voice.wav" \
  "$work/avatar-25fps.mp4" "$work/avatar-29.97fps.mp4" || result=$?

kill "$sampler" 2>/dev/null || true
sampler=""
peak="$(sort -n "$work/vram.csv" | tail -1)"
echo "peak VRAM on the box (nvidia-smi): ${peak:-?} MiB"
if [ "$result" -ne 0 ]; then
  docker logs --tail 50 "$name" >&2
  echo "gpu-smoke: FAILED" >&2
  exit 1
fi
echo "gpu-smoke: ok"
