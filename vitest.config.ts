import { defineConfig } from "vitest/config";

/** Workspace packages are consumed from their TypeScript sources (the `source` export condition). */
const conditions = ["source", "node"];
const sourceFirst = {
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
};
/** Dependencies that publish TypeScript under the same `source` condition: transformed, not loaded by Node. */
const server = { deps: { inline: [/@modelcontextprotocol\/sdk/, /eventsource-parser/, /eventsource\//] } };

export default defineConfig({
  ...sourceFirst,
  test: {
    projects: [
      {
        ...sourceFirst,
        test: {
          name: "unit",
          server,
          include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts"],
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
