# One image for every service; SERVICE (build arg or runtime env) selects which
# one runs: `node services/$SERVICE/dist/main.js`, compiled JavaScript with
# production dependencies only, as the non-root user `node`.
#
#   docker build -t agent-runtime .
#   docker run -e SERVICE=model-proxy -e NATS_URL=... agent-runtime
#   docker run ... agent-runtime node services/ingress/dist/admin-cli.js keys list --tenant acme

# --- build: the whole workspace with its dev dependencies, compiled once.
FROM node:22-bookworm-slim AS build
ENV CI=true
WORKDIR /app
RUN npm install -g pnpm@9.15.9 && pnpm --version
# Dependencies are fetched from the lockfile alone, so this layer is cached
# until pnpm-lock.yaml changes, and new workspace packages need no edit here.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline
# Every package and service, dependencies first (pnpm sorts the selection
# topologically). Each build is `tsc -p tsconfig.build.json` into dist/,
# without tests, test support or fixtures.
RUN pnpm --filter "./packages/*" --filter "./services/*" run build
# Production dependencies of the packages and services only: no dev
# dependencies, no root tooling (turbo, tsx, typescript, vitest), no test workspace.
RUN rm -rf node_modules packages/*/node_modules services/*/node_modules test/node_modules \
  && pnpm install --prod --frozen-lockfile --offline --filter "./packages/*" --filter "./services/*"
# What runs: the shared virtual store, and of each project its package.json
# (exports point at dist), dist and node_modules (links into the store and to
# sibling projects). No sources.
RUN mkdir -p /runtime \
  && cp -a node_modules /runtime/ \
  && for project in packages/* services/*; do \
    mkdir -p "/runtime/$project" \
    && for part in package.json dist node_modules; do \
      if [ -e "$project/$part" ]; then cp -a "$project/$part" "/runtime/$project/"; fi; \
    done; \
  done

# --- runtime
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /runtime /app
COPY scripts/healthcheck.mjs /app/scripts/healthcheck.mjs
ARG SERVICE=ingress
ENV SERVICE=${SERVICE}
# One service per container: a fixed ops port (outside a container the default is a free port).
ENV OPS_PORT=9100
# The `node` user (uid 1000) comes with the base image; the code stays root-owned and read-only.
USER node
# ingress HTTP, then the ops ports (/healthz, /readyz, /metrics) of orchestrator, model-proxy, tool-executor, memory.
EXPOSE 8080 9101 9102 9103 9104
# GET /healthz on the service's own port: PORT for ingress, <SERVICE>_OPS_PORT or OPS_PORT for the others.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs"]
# `exec` replaces the shell with node, so SIGTERM reaches the service directly.
CMD ["sh", "-c", "exec node services/${SERVICE}/dist/main.js"]
