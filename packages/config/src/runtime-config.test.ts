import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./load.js";
import { loadRuntimeConfig } from "./runtime-config.js";

function writeConfig(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "agent-config-"));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("loadRuntimeConfig", () => {
  it("gives defaults when AGENT_CONFIG is unset", () => {
    const config = loadRuntimeConfig({});
    expect(config.providers).toEqual({});
    expect(config.limits.maxBodyBytes).toBe(1024 * 1024);
  });

  it("reads YAML with env interpolation", () => {
    const path = writeConfig(
      "c.yaml",
      "providers:\n  main:\n    baseUrl: ${BASE}\n    apiKeyEnv: KEY\nmodels:\n  small:\n    provider: main\ntiers:\n  fast: [small]\n",
    );
    const config = loadRuntimeConfig({ AGENT_CONFIG: path, BASE: "http://127.0.0.1:1/v1" });
    expect(config.providers.main?.baseUrl).toBe("http://127.0.0.1:1/v1");
    expect(config.tiers.fast).toEqual(["small"]);
  });

  it("names the bad path", () => {
    const path = writeConfig("c.json", JSON.stringify({ providers: { main: { baseUrl: "not a url" } } }));
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: path })).toThrow(ConfigError);
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: path })).toThrow(/providers\.main\.baseUrl/);
  });

  it("rejects unknown top-level keys and unset env vars", () => {
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: writeConfig("c.yaml", "provders: {}\n") })).toThrow(
      /provders/,
    );
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: writeConfig("c.yaml", "x: ${NOPE_NOT_SET}\n") })).toThrow(
      /NOPE_NOT_SET/,
    );
  });
});

describe("settings that were never read", () => {
  it("are refused with an error naming them", () => {
    const route = writeConfig("c.yaml", "agents:\n  helper:\n    route: cheap\n");
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: route })).toThrow(
      /agents\.helper\.route: .*not supported/,
    );
    const history = writeConfig("c.yaml", "agents:\n  helper:\n    memory: { historyBudgetTokens: 100 }\n");
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: history })).toThrow(
      /agents\.helper\.memory\.historyBudgetTokens: .*contextBudgetTokens/,
    );
  });
});
