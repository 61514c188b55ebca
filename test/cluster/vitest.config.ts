import { defineConfig } from "vitest/config";

/**
 * The clustered-bus suite's own vitest project (`pnpm test:cluster`): three local nats-server
 * processes as one JetStream cluster, the services as processes on R3 streams. Not part of
 * `pnpm test`; CI runs it after the main tests. Workspace packages come from their TypeScript sources.
 */
const conditions = ["source", "node"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
  test: {
    name: "cluster",
    root: import.meta.dirname,
    include: ["*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
