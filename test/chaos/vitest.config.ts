import { defineConfig } from "vitest/config";

/**
 * The chaos suite's own vitest project (`pnpm test:chaos`): not part of `pnpm test`, which runs the
 * projects of the root config. Workspace packages come from their TypeScript sources, as there.
 */
const conditions = ["source", "node"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
  test: {
    name: "chaos",
    root: import.meta.dirname,
    include: ["chaos.test.ts"],
    testTimeout: 1_800_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
