# One image for every service; SERVICE selects which one runs.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN corepack enable && corepack prepare pnpm@9.15.9 --activate
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/bus/package.json packages/bus/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/testkit/package.json packages/testkit/
COPY packages/config/package.json packages/config/
COPY packages/stores/package.json packages/stores/
COPY packages/tools/package.json packages/tools/
COPY services/ingress/package.json services/ingress/
COPY services/orchestrator/package.json services/orchestrator/
COPY services/model-proxy/package.json services/model-proxy/
COPY services/tool-executor/package.json services/tool-executor/
COPY services/memory/package.json services/memory/
COPY test/package.json test/
RUN pnpm install --frozen-lockfile

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app /app
COPY tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY scripts ./scripts
ARG SERVICE=ingress
ENV SERVICE=${SERVICE}
USER node
EXPOSE 8080 9101 9102 9103 9104
CMD ["sh", "-c", "exec node --conditions=source --import tsx services/${SERVICE}/src/main.ts"]
