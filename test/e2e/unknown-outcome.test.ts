/**
 * A tool executor SIGKILLs itself at the worst moment of a side-effecting call: its idempotency
 * key is claimed, the webhook is not called yet (failpoint `after-claim`). Another executor gets the
 * call again and finds the claim, which its killed executor no longer renews. Then:
 * - a webhook that applies each `Idempotency-Key` once (`idempotentByKey`) gets the call, under
 *   the key of its run, step and call position, once the first send must be over (the tool's time
 *   limit and a second more), and the run answers with the webhook's result;
 * - any other webhook is never called (it might have been, for all the executor knows), and the
 *   run is told the outcome is unknown as soon as the claim's renewals have stopped for their
 *   silence (4 s): its time limit is two minutes, far past the run's own, so waiting for the claim
 *   to age would outlive the run.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { type SideEffectHook, startSideEffectHook } from "../support/side-effect-hook.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-unknown-outcome";
/** The keyed webhook's time limit (its claim may be taken over a second after). */
const KEYED_TIMEOUT_MS = 1500;
/** The plain webhook's: a claim aged twice this would outlive the run (its deadline is 2 minutes). */
const PLAIN_TIMEOUT_MS = 120_000;
let fake: FakeOpenAI;
let stack: Stack;
let keyed: SideEffectHook;
let plain: SideEffectHook;
const processes: ServiceProcess[] = [];
/** What the model read as each run's tool result, by the tool's name. */
const toolResults = new Map<string, string>();

beforeAll(async () => {
  keyed = await startSideEffectHook({ honorKeys: true });
  plain = await startSideEffectHook();
  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const tool = body.tools?.[0]?.function.name ?? "none";
    const result = body.messages.find((message) => message.role === "tool");
    if (!result) return { toolCalls: [{ name: tool, arguments: { order: "A-1" } }] };
    toolResults.set(tool, contentText(result.content));
    return { content: `done: ${contentText(result.content)}` };
  });
  const webhook = (url: string, idempotentByKey: boolean, timeoutMs: number) => ({
    description: "ships an order (a side effect)",
    url,
    sideEffects: true,
    idempotentByKey,
    timeoutMs,
    allowPrivateNetwork: true,
    parameters: { type: "object", properties: { order: { type: "string" } }, required: ["order"] },
  });
  const configPath = join(mkdtempSync(join(tmpdir(), "unknown-outcome-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        webhooks: {
          ship_keyed: webhook(keyed.url, true, KEYED_TIMEOUT_MS),
          ship_plain: webhook(plain.url, false, PLAIN_TIMEOUT_MS),
        },
      },
      agents: {
        "keyed-shipper": { tools: ["ship_keyed"], maxSteps: 4 },
        "plain-shipper": { tools: ["ship_plain"], maxSteps: 4 },
      },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
    without: ["tool-executor"],
  });
}, 90_000);

afterAll(async () => {
  for (const process of processes) await process.stop("SIGKILL");
  await stack?.stop();
  await fake?.close();
  await keyed?.close();
  await plain?.close();
});

const executor = async (failpoints: string) => {
  const started = await startServiceProcess("tool-executor", {
    ...stack.env,
    OPS_PORT: "0",
    LOG_LEVEL: "info",
    FAILPOINTS: failpoints,
  });
  processes.push(started);
  return started;
};

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Runs `agent` to its end while the only executor SIGKILLs itself between claiming the call's key
 * and calling the webhook; a healthy executor starts once it is gone, and stops once the run has
 * answered. Returns the run's answer and the healthy executor's log.
 */
async function runThroughKilledExecutor(agent: string) {
  const doomed = await executor("after-claim");
  const answer = fetch(`${stack.url}/v1/runs`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ agent, input: "ship order A-1", wait: true }),
  });
  await until(() => doomed.child.signalCode !== null, 30_000);
  expect(doomed.child.signalCode).toBe("SIGKILL");
  const successor = await executor("");
  const response = await answer;
  // the next test's doomed executor must be the only one
  await successor.stop("SIGTERM");
  expect(response.status).toBe(200);
  const body = (await response.json()) as { id: string; status: string; output?: { content?: unknown } };
  return { ...body, successorLog: successor.output() };
}

describe("a side-effecting call whose executor was killed between its claim and its act", () => {
  it("is sent again under its key when the webhook applies each key once", async () => {
    const run = await runThroughKilledExecutor("keyed-shipper");
    expect(run.status).toBe("completed");
    expect(contentText(run.output?.content)).toBe('done: {"shipped":true}');
    // one call, the first the webhook saw, under the key of the run's first step's first call
    expect(keyed.calls).toHaveLength(1);
    expect(keyed.calls[0]!.repeat).toBeUndefined();
    expect(keyed.calls[0]!.key).toBe(`${run.id}:0:0`);
    expect(JSON.parse(keyed.calls[0]!.body)).toEqual({ order: "A-1" });
    expect(run.successorLog).toContain("sending again a call whose executor stopped while holding it");
  }, 90_000);

  it("is never made again when the webhook does not, and the run is told its outcome is unknown", async () => {
    const run = await runThroughKilledExecutor("plain-shipper");
    expect(run.status).toBe("completed");
    expect(plain.calls).toHaveLength(0);
    expect(toolResults.get("ship_plain")).toMatch(/outcome of this call .* is unknown/);
  }, 90_000);
});
