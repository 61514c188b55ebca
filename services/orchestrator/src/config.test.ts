import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@agent-runtime/config";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "./config.js";

const withAgents = (agents: unknown) => {
  const path = join(mkdtempSync(join(tmpdir(), "orchestrator-config-")), "config.yaml");
  writeFileSync(path, stringify({ agents }));
  return { AGENT_CONFIG: path };
};

describe("orchestrator config", () => {
  it("has defaults and the default assistant agent", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      opsPort: 0, // a free port unless ORCHESTRATOR_OPS_PORT or OPS_PORT names one
      interactiveConcurrency: 64,
      batchConcurrency: 4,
      ackWaitMs: 5000,
      drainGraceMs: 25_000,
    });
    expect(config.agents.assistant?.tools).toEqual(["calculator", "current_time"]);
  });

  it("reads concurrency bounds from the environment", () => {
    const config = loadConfig({ INTERACTIVE_CONCURRENCY: "8", BATCH_CONCURRENCY: "2", DRAIN_GRACE_MS: "0" });
    expect(config).toMatchObject({ interactiveConcurrency: 8, batchConcurrency: 2, drainGraceMs: 0 });
  });

  it("rejects a guardrail pattern that is not a regular expression, naming where it is", () => {
    const load = () => loadConfig(withAgents({ guarded: { guardrails: { denyPatterns: ["(unclosed"] } } }));
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/agents\.guarded\.guardrails\.denyPatterns\[0\].*not a valid regular expression/);
  });

  it("rejects delegation to an agent that does not exist or to itself", () => {
    expect(() => loadConfig(withAgents({ lead: { delegates: ["ghost"] } }))).toThrow(
      /agents\.lead\.delegates\[0\].*no agent named "ghost"/,
    );
    expect(() => loadConfig(withAgents({ lead: { delegates: ["lead"] } }))).toThrow(
      /cannot delegate to itself/,
    );
    expect(loadConfig(withAgents({ lead: { delegates: ["assistant"] } })).agents.lead?.delegates).toEqual([
      "assistant",
    ]);
  });
});
