import { defineConfig } from "vitest/config";

/**
 * The replay's smoke form (`pnpm exec vitest run --config test/replay/vitest.config.ts`): a few
 * tasks of each kind, naive and configured. Not part of `pnpm test`. Workspace packages come from
 * their TypeScript sources.
 */
const conditions = ["source", "node"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
  test: {
    name: "replay",
    // dependencies that publish TypeScript under the same `source` condition: transformed, not loaded by Node
    server: { deps: { inline: [/@modelcontextprotocol\/sdk/, /eventsource-parser/, /eventsource\//] } },
    root: import.meta.dirname,
    include: ["replay.test.ts", "variants.test.ts"],
    testTimeout: 900_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
