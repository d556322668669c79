# syntax=docker/dockerfile:1.7
# Fleet orchestrator (VPS). Build from the repository root:
#   docker build -f docker/orchestrator.Dockerfile -t fleet-orchestrator .
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
    pnpm config set store-dir /pnpm/store && bash scripts/build-bundle.sh orchestrator /out

FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to Node (which drains and closes) and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/fleet/orchestrator \
 && chown -R node:node /var/lib/fleet
WORKDIR /app
# Root-owned code, run by `node`: the process cannot rewrite itself.
COPY --from=build /out /app
USER node
# DATA_DIR only matters without DATABASE_URL (embedded PGlite); compose.vps.yaml sets a PostgreSQL URL.
# /app/bin/fleet is the operator CLI: `docker compose exec orchestrator fleet workers` uses this
# container's orchestrator and keys.
ENV PATH=/app/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/var/lib/fleet/orchestrator
EXPOSE 8080
# Migrations run at start (main.js); `npm run db:migrate` (node dist/db/migrate-cli.js) runs them alone.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT||8080}/healthz`,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
