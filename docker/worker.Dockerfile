# syntax=docker/dockerfile:1.7
# Fleet worker (GPU box, beside the inference container). Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t fleet-worker .
# The bundle is made by scripts/build-bundle.sh, the same script CI runs and starts
# (scripts/check-bundles.sh), so CI proves what this image runs.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    PNPM_HOME=/pnpm \
    CI=true
# corepack installs the pnpm version pinned by package.json's packageManager.
RUN corepack enable
WORKDIR /src
# Lockfile first: the dependency download is cached until the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN --mount=type=cache,id=fleet-pnpm-store,target=/pnpm/store \
    pnpm config set store-dir /pnpm/store && pnpm fetch
COPY . .
RUN --mount=type=cache,id=fleet-pnpm-store,target=/pnpm/store \
    pnpm config set store-dir /pnpm/store && bash scripts/build-bundle.sh worker /out

FROM ${NODE_IMAGE} AS runtime
# ffmpeg/ffprobe validate inputs (and are the CPU development engine); tini is PID 1 so SIGTERM
# reaches Node, which stops claiming, finishes or releases its jobs and sends a final heartbeat.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/fleet/work \
 && chown -R node:node /var/lib/fleet
WORKDIR /app
# Root-owned code, run by `node` (uid 1000, the same uid as the inference image's user, so both
# can write the shared work volume).
COPY --from=build /out /app
USER node
# A 1-MiB young generation collects upload buffers sooner: peak RSS uploading a 1 GiB output
# drops from ~182 MiB to ~125 MiB (apps/worker/bench/README.md).
# /app/bin/fleet is the operator CLI: `docker compose exec worker fleet doctor` checks this box
# with the container's own environment, network and volume.
ENV PATH=/app/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORK_DIR=/var/lib/fleet/work \
    NODE_OPTIONS=--max-semi-space-size=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT||8000}/hc`,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
