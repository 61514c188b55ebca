# One image for every service; SERVICE (build arg or runtime env) selects which
# one runs. Services run from their TypeScript sources through tsx, exactly as
# `pnpm start` does, so no build step is needed.
#
#   docker build -t agent-runtime .
#   docker run -e SERVICE=model-proxy -e NATS_URL=... agent-runtime

# --- dependencies: fetched from the lockfile alone, so this layer is cached
# until pnpm-lock.yaml changes, and new workspace packages need no edit here.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN npm install -g pnpm@9.15.9 && pnpm --version
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline

# --- runtime
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
ARG SERVICE=ingress
ENV SERVICE=${SERVICE}
# The `node` user (uid 1000) comes with the base image; the code stays root-owned and read-only.
USER node
# ingress HTTP, then the ops ports (/healthz, /readyz, /metrics) of orchestrator, model-proxy, tool-executor, memory.
EXPOSE 8080 9101 9102 9103 9104
# `exec` replaces the shell with node, so SIGTERM reaches the service directly.
CMD ["sh", "-c", "exec node --conditions=source --import tsx services/${SERVICE}/src/main.ts"]
