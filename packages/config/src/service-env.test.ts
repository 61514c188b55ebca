import { describe, expect, it } from "vitest";
import { ConfigError } from "./load.js";
import { defaultPriceOf } from "./prices.js";
import { opsPortOf, opsPortVariable } from "./service-env.js";

describe("opsPortOf", () => {
  it("reads the service's own variable, then OPS_PORT, else 0 (a free port)", () => {
    expect(opsPortVariable("model-proxy")).toBe("MODEL_PROXY_OPS_PORT");
    expect(opsPortOf("model-proxy", { MODEL_PROXY_OPS_PORT: "9202", OPS_PORT: "9100" })).toBe(9202);
    expect(opsPortOf("model-proxy", { INGRESS_OPS_PORT: "9200", OPS_PORT: "9100" })).toBe(9100);
    expect(opsPortOf("memory", {})).toBe(0);
    expect(opsPortOf("memory", { OPS_PORT: "" })).toBe(0);
  });

  it("refuses what is not a port, naming the variable", () => {
    expect(() => opsPortOf("ingress", { INGRESS_OPS_PORT: "http" })).toThrow(ConfigError);
    expect(() => opsPortOf("ingress", { OPS_PORT: "70000" })).toThrow(/OPS_PORT/);
  });
});

describe("defaultPriceOf", () => {
  it("knows well-known models, their dated snapshots and router names; the config's table wins", () => {
    expect(defaultPriceOf("gpt-4o-mini")).toMatchObject({ input: 0.15, output: 0.6 });
    expect(defaultPriceOf("gpt-4o-2024-08-06")).toMatchObject({ input: 2.5, output: 10 });
    expect(defaultPriceOf("openai/gpt-4.1-mini")).toMatchObject({ input: 0.4 });
    expect(defaultPriceOf("gpt-4o", { "gpt-4o": { input: 1, output: 2 } })).toEqual({ input: 1, output: 2 });
    expect(defaultPriceOf("my-local-llama")).toBeUndefined();
  });
});
