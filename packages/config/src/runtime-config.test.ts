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
      /agents\.helper\.route: no route named "cheap"/,
    );
    const history = writeConfig("c.yaml", "agents:\n  helper:\n    memory: { historyBudgetTokens: 100 }\n");
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: history })).toThrow(
      /agents\.helper\.memory\.historyBudgetTokens: .*contextBudgetTokens/,
    );
  });
});

describe("agent routes, variants and deep analysis", () => {
  const base =
    "tiers:\n  fast: [small]\n  strong: [large]\nroutes:\n  - name: cheap\n    when: { task: [classify] }\n    tier: fast\n";

  it("an agent's route is the named rule's tier for every step of that agent, ahead of the configured rules", () => {
    const path = writeConfig(
      "c.yaml",
      `${base}agents:\n  helper:\n    route: cheap\n  thinker:\n    deepAnalysis: true\n`,
    );
    const config = loadRuntimeConfig({ AGENT_CONFIG: path });
    expect(config.routes.map((rule) => rule.name)).toEqual(["cheap", "cheap", "deep-analysis:thinker"]);
    expect(config.routes[0]).toMatchObject({ when: { agent: ["helper"] }, tier: "fast" });
    expect(config.routes[1]?.when).toEqual({ task: ["classify"] });
    expect(config.routes[2]).toMatchObject({ when: { agent: ["thinker"] }, tier: "strong" });
  });

  it("refuses a route beside a pinned tier, and variants that collide", () => {
    const pinned = writeConfig("c.yaml", `${base}agents:\n  helper:\n    route: cheap\n    tier: strong\n`);
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: pinned })).toThrow(
      /agents\.helper\.route: route and tier both choose the model/,
    );
    const twice = writeConfig(
      "c.yaml",
      `${base}agents:\n  helper:\n    variants:\n      - { name: a, weight: 1, tier: fast }\n      - { name: a, weight: 1, tier: strong }\n`,
    );
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: twice })).toThrow(
      /agents\.helper\.variants\[1\]\.name: variant "a" twice/,
    );
    const empty = writeConfig(
      "c.yaml",
      `${base}agents:\n  helper:\n    variants:\n      - { name: a, weight: 1 }\n      - { name: b, weight: 1, tier: strong }\n`,
    );
    expect(() => loadRuntimeConfig({ AGENT_CONFIG: empty })).toThrow(
      /agents\.helper\.variants\[0\]: a variant changes a tier, a model or the system prompt/,
    );
  });
});
