import { configDefaults, defineConfig } from "vitest/config";

/** Workspace packages are consumed from their TypeScript sources (the `source` export condition). */
const conditions = ["source", "node"];
const sourceFirst = {
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
};
/** Dependencies that publish TypeScript under the same `source` condition: transformed, not loaded by Node. */
const server = { deps: { inline: [/@modelcontextprotocol\/sdk/, /eventsource-parser/, /eventsource\//] } };
/** Tests beside the sources: `x.test.ts` needs no server, `x.integration.test.ts` talks to NATS, Postgres or Redis. */
const besideSources = ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts"];
const integrationTests = [
  "packages/*/src/**/*.integration.test.ts",
  "services/*/src/**/*.integration.test.ts",
];
/**
 * Unit tests that need a process of their own (they start OpenTelemetry, whose providers are
 * process-wide globals, or replace a module) are a project apart, each file isolated; the other
 * unit tests can share one process (`pnpm test:unit` runs them with `--no-isolate`, since a project
 * cannot set `isolate` by itself), which keeps it to seconds.
 */
const isolatedUnitTests = [
  "services/tool-executor/src/safe-http-rebinding.test.ts",
  "packages/telemetry/src/sdk*.test.ts",
  "packages/telemetry/src/span.test.ts",
  "packages/telemetry/src/logger.test.ts",
  "packages/telemetry/src/http-tracing.test.ts",
];
/** Port 1 refuses every connection: a unit test that reaches for a server fails at once instead of using it. */
const noServers = {
  NATS_URL: "nats://127.0.0.1:1",
  DATABASE_URL: "postgres://postgres@127.0.0.1:1/postgres",
  REDIS_URL: "redis://127.0.0.1:1",
};

export default defineConfig({
  ...sourceFirst,
  test: {
    projects: [
      {
        ...sourceFirst,
        test: {
          name: "unit",
          server,
          include: besideSources,
          exclude: [...configDefaults.exclude, ...integrationTests, ...isolatedUnitTests],
          env: noServers,
          testTimeout: 10_000,
          hookTimeout: 10_000,
        },
      },
      {
        ...sourceFirst,
        test: {
          name: "unit-isolated",
          server,
          include: isolatedUnitTests,
          exclude: [...configDefaults.exclude, ...integrationTests],
          env: noServers,
          testTimeout: 10_000,
          hookTimeout: 10_000,
        },
      },
      {
        ...sourceFirst,
        test: {
          name: "integration",
          server,
          include: integrationTests,
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        ...sourceFirst,
        test: {
          name: "e2e",
          server,
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
