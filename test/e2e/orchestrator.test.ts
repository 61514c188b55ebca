import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import {
  CloudEvent,
  Endpoints,
  RunEvent,
  type RunFinishedEvent,
  RunRequest,
  Subjects,
} from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Stack, startStack } from "../support/stack.js";

let fake: FakeOpenAI;
let stack: Stack;
let bus: Bus;
let hook: Server;
let hookUrl: string;
const hookCalls: string[] = [];
/** Webhook calls whose caller hung up before the answer. */
let hookAbandoned = 0;

export function agentConfig(hookBase: string) {
  return {
    providers: { main: { baseUrl: "${FAKE_URL}", apiKey: "k" } },
    models: {
      "fake-fast": { provider: "main", pricing: { input: 1, output: 1 } },
      "fake-strong": { provider: "main", pricing: { input: 5, output: 5 } },
      "fake-pricey": { provider: "main", pricing: { input: 100_000, output: 100_000 } },
    },
    tiers: { fast: ["fake-fast"], strong: ["fake-strong"], pricey: ["fake-pricey"] },
    tools: {
      webhooks: {
        act: {
          description: "performs an action (side effect)",
          url: `${hookBase}/act`,
          method: "POST",
          sideEffects: true,
          timeoutMs: 10_000,
          allowPrivateNetwork: true,
          parameters: { type: "object", properties: { what: { type: "string" } } },
        },
        slow_act: {
          description: "performs an action that takes a while (side effect)",
          url: `${hookBase}/act?delay=8000`,
          method: "POST",
          sideEffects: true,
          timeoutMs: 10_000,
          allowPrivateNetwork: true,
          parameters: { type: "object", properties: { what: { type: "string" } } },
        },
      },
    },
    agents: {
      worker: { systemPrompt: "You work.", tools: ["calculator", "act"], maxSteps: 4 },
      patient: { systemPrompt: "You wait.", tools: ["slow_act"], maxSteps: 2 },
      stepper: { tools: ["calculator"], maxSteps: 2 },
      cheap: { tier: "pricey", tools: ["calculator"], costBudgetUsd: 0.01 },
      slowpoke: { tools: ["calculator"], timeBudgetMs: 400 },
      guarded: {
        guardrails: {
          denyPatterns: ["launch codes"],
          redactPii: ["email", "phone"],
          outputDenyPatterns: ["TOP SECRET"],
        },
      },
      eventer: { triggers: ["com.example.order.*"], tools: [] },
      planned: { planner: true, tools: ["calculator"] },
      structured: {
        guardrails: {
          outputJsonSchema: {
            type: "object",
            properties: { total: { type: "number" } },
            required: ["total"],
          },
          numericBounds: { total: { min: 0, max: 1000 } },
        },
      },
      lead: { systemPrompt: "You lead.", delegates: ["researcher"], tools: [] },
      researcher: { systemPrompt: "You research.", description: "finds facts", tools: [] },
    },
  };
}

async function collect(
  runId: string,
  timeoutMs = 30_000,
): Promise<{ events: RunEvent[]; finished: RunFinishedEvent }> {
  const events: RunEvent[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`run ${runId} did not finish; saw ${events.map((e) => e.type).join(",")}`)),
      timeoutMs,
    );
    const subscription = bus.subscribe(Subjects.runEvents(runId), RunEvent, (event) => {
      events.push(event);
      if (event.type === "run-finished") {
        clearTimeout(timer);
        subscription.unsubscribe();
        resolve({ events, finished: event });
      }
    });
  });
}

async function startRun(agent: string, content: string, extra: Partial<RunRequest> = {}) {
  const runId = `run_${randomUUID()}`;
  const done = collect(runId);
  await bus.nc.flush();
  await bus.publishDurable(
    Subjects.runs(extra.priority ?? "interactive", "acme"),
    RunRequest,
    {
      runId,
      tenant: "acme",
      agent,
      input: [{ role: "user", content }],
      threadId: `thread_${runId}`,
      priority: "interactive",
      createdAt: Date.now(),
      deadline: Date.now() + 60_000,
      stream: false,
      source: "runs",
      ...extra,
    },
    { msgId: runId },
  );
  return { runId, done };
}

beforeAll(async () => {
  hook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    response.on("close", () => {
      if (!response.writableEnded) hookAbandoned++;
    });
    request.on("end", () => {
      hookCalls.push(body);
      setTimeout(
        () => response.end(JSON.stringify({ done: true, n: hookCalls.length })),
        Number(new URL(request.url ?? "/", "http://x").searchParams.get("delay") ?? 0),
      );
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  fake = await startFakeOpenAI();
  const configPath = join(mkdtempSync(join(tmpdir(), "orch-")), "config.yaml");
  writeFileSync(configPath, stringify(agentConfig(hookUrl)));
  stack = await startStack({
    bootstrapApiKey: "sk-orchestrator-tests",
    env: { AGENT_CONFIG: configPath, FAKE_URL: fake.url, BATCH_CONCURRENCY: "2" },
  });
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix });
});

afterAll(async () => {
  await bus?.close();
  await stack?.stop();
  await fake?.close();
  hook?.close();
});

describe("orchestrator", () => {
  it("runs a multi-step tool loop with parallel tool calls", async () => {
    fake.setHandler((body) => {
      const toolResults = body.messages.filter((message) => message.role === "tool").length;
      if (toolResults === 0) {
        return {
          toolCalls: [
            { name: "calculator", arguments: { expression: "2+2" } },
            { name: "calculator", arguments: { expression: "3*3" } },
          ],
        };
      }
      if (toolResults === 2) return { toolCalls: [{ name: "calculator", arguments: { expression: "4+9" } }] };
      return { content: `done with ${toolResults} tool results` };
    });
    const { done } = await startRun("worker", "compute things");
    const { events, finished } = await done;
    expect(finished.status).toBe("completed");
    expect(finished.steps).toBe(3);
    expect(finished.output?.content).toBe("done with 3 tool results");
    const results = events.filter((event) => event.type === "tool-result");
    expect(results.map((event) => event.type === "tool-result" && event.content)).toEqual([
      '{"expression":"2+2","result":4}',
      '{"expression":"3*3","result":9}',
      '{"expression":"4+9","result":13}',
    ]);
    expect(finished.usage.totalTokens).toBeGreaterThan(0);
    expect(finished.costUsd).toBeGreaterThan(0);
    const types = events.map((event) => event.type);
    expect(types[0]).toBe("run-started");
    expect(types).toContain("usage");
  });

  it("ends at the step limit with budget_exceeded and what was spent", async () => {
    fake.setHandler(() => ({ toolCalls: [{ name: "calculator", arguments: { expression: "1+1" } }] }));
    const { finished } = await (await startRun("stepper", "loop forever")).done;
    expect(finished.status).toBe("budget_exceeded");
    expect(finished.error?.code).toBe("budget_exceeded");
    expect(finished.error?.details).toMatchObject({ budget: "steps", limit: 2 });
    expect(finished.steps).toBe(2);
  });

  it("ends at the cost budget", async () => {
    fake.setHandler(() => ({ toolCalls: [{ name: "calculator", arguments: { expression: "1+1" } }] }));
    const { finished } = await (await startRun("cheap", "spend")).done;
    expect(finished.status).toBe("budget_exceeded");
    expect(finished.error?.details).toMatchObject({ budget: "cost" });
    expect(finished.costUsd).toBeGreaterThanOrEqual(0.01);
    expect(finished.steps).toBe(1);
  });

  it("ends at the time budget", async () => {
    fake.setHandler(() => ({
      toolCalls: [{ name: "calculator", arguments: { expression: "1+1" } }],
      latencyMs: 250,
    }));
    const { finished } = await (await startRun("slowpoke", "take your time")).done;
    expect(finished.status).toBe("budget_exceeded");
    expect(finished.error?.message).toMatch(/time budget|deadline|did not answer/);
  });

  it("blocks denied input and redacts PII before the model sees it", async () => {
    const before = fake.chatRequests().length;
    const blocked = await (await startRun("guarded", "tell me the launch codes")).done;
    expect(blocked.finished.status).toBe("failed");
    expect(blocked.finished.error?.code).toBe("guardrail_blocked");
    expect(fake.chatRequests().length).toBe(before);

    fake.setHandler((body) => ({ content: `noted: ${String(body.messages.at(-1)?.content)}` }));
    const redacted = await (await startRun("guarded", "mail me at ada@example.com or call +1 415 555 0100"))
      .done;
    expect(redacted.finished.status).toBe("completed");
    const seen = JSON.stringify(fake.chatRequests().at(-1)?.messages);
    expect(seen).not.toContain("ada@example.com");
    expect(seen).not.toContain("555 0100");
    expect(seen).toContain("[email]");

    fake.setHandler(() => ({ content: "this is TOP SECRET material" }));
    const output = await (await startRun("guarded", "anything")).done;
    expect(output.finished.status).toBe("failed");
    expect(output.finished.error?.code).toBe("guardrail_blocked");
  });

  it("cancels a run between steps", async () => {
    fake.setHandler(() => ({
      toolCalls: [{ name: "calculator", arguments: { expression: "1+1" } }],
      latencyMs: 300,
    }));
    const { runId, done } = await startRun("worker", "slow loop");
    await new Promise((resolve) => setTimeout(resolve, 150));
    const cancel = await bus.request(Endpoints.runCancel, {
      meta: { v: 1, tenant: "acme", requestId: "c", deadline: Date.now() + 5000 },
      runId,
    });
    expect(cancel.cancelled).toBe(true);
    const { finished } = await done;
    expect(finished.status).toBe("cancelled");
    const record = await bus.request(Endpoints.runGet, {
      meta: { v: 1, tenant: "acme", requestId: "g", deadline: Date.now() + 5000 },
      runId,
    });
    expect(record.run?.status).toBe("cancelled");
    const otherTenant = await bus.request(Endpoints.runGet, {
      meta: { v: 1, tenant: "evil", requestId: "g", deadline: Date.now() + 5000 },
      runId,
    });
    expect(otherTenant.run).toBeNull();
  });

  it("cancels the in-flight model call of a cancelled run", async () => {
    fake.setHandler(() => ({ content: "too late", latencyMs: 3000 }));
    const before = fake.abandoned;
    const { runId, done } = await startRun("assistant", "think for a long time");
    for (
      let i = 0;
      i < 100 && fake.chatRequests().at(-1)?.messages.at(-1)?.content !== "think for a long time";
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const cancelledAt = Date.now();
    await bus.request(Endpoints.runCancel, {
      meta: { v: 1, tenant: "acme", requestId: "c2", deadline: Date.now() + 5000 },
      runId,
    });
    const { finished } = await done;
    expect(finished.status).toBe("cancelled");
    expect(Date.now() - cancelledAt).toBeLessThan(1500);
    // the provider saw its caller hang up: the call was aborted, not left to run
    for (let i = 0; i < 50 && fake.abandoned === before; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.abandoned).toBe(before + 1);
  });

  it("cancels the in-flight tool call of a cancelled run: the webhook's caller hangs up", async () => {
    fake.setHandler((body) => {
      if (body.messages.some((message) => message.role === "tool")) return { content: "too late" };
      return { toolCalls: [{ id: "call_slow", name: "slow_act", arguments: { what: "wait" } }] };
    });
    const calls = hookCalls.length;
    const abandoned = hookAbandoned;
    const { runId, done } = await startRun("patient", "do the slow thing");
    for (let i = 0; i < 150 && hookCalls.length === calls; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(hookCalls.length).toBe(calls + 1);
    const cancelledAt = Date.now();
    await bus.request(Endpoints.runCancel, {
      meta: { v: 1, tenant: "acme", requestId: "c-tool", deadline: Date.now() + 5000 },
      runId,
    });
    const { finished } = await done;
    expect(finished.status).toBe("cancelled");
    expect(Date.now() - cancelledAt).toBeLessThan(1500);
    // the webhook saw its caller hang up long before its 8 s answer
    for (let i = 0; i < 50 && hookAbandoned === abandoned; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(hookAbandoned).toBe(abandoned + 1);
  });

  it("cancels a run's delegated child and the child's in-flight model call", async () => {
    fake.setHandler((body) => {
      const system = String(body.messages[0]?.content ?? "");
      if (system.startsWith("You research.")) return { content: "too late", latencyMs: 4000 };
      return {
        toolCalls: [
          { id: "call_del", name: "delegate", arguments: { agent: "researcher", task: "dig deep" } },
        ],
      };
    });
    const before = fake.abandoned;
    const { runId, done } = await startRun("lead", "delegate and wait");
    for (let i = 0; i < 200 && !fake.chatRequests().some((b) => JSON.stringify(b).includes("dig deep")); i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await bus.request(Endpoints.runCancel, {
      meta: { v: 1, tenant: "acme", requestId: "c3", deadline: Date.now() + 5000 },
      runId,
    });
    const { finished } = await done;
    expect(finished.status).toBe("cancelled");
    const child = await bus.request(Endpoints.runGet, {
      meta: { v: 1, tenant: "acme", requestId: "g3", deadline: Date.now() + 5000 },
      runId: `${runId}:child:0:0`,
    });
    expect(child.run?.status).toBe("cancelled");
    // the child's provider call was hung up on, not left to run its 4 s
    for (let i = 0; i < 100 && fake.abandoned === before; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.abandoned).toBe(before + 1);
  });

  it("keeps interactive runs ahead of a batch flood", async () => {
    fake.setHandler(() => ({ content: "ok", latencyMs: 100 }));
    const batch = [];
    for (let i = 0; i < 12; i++) batch.push(await startRun("assistant", `batch ${i}`, { priority: "batch" }));
    const interactive = await startRun("assistant", "urgent");
    const finishedAt = new Map<string, number>();
    await Promise.all(
      [...batch, interactive].map(async (run) => {
        await run.done;
        finishedAt.set(run.runId, Date.now());
      }),
    );
    const urgentAt = finishedAt.get(interactive.runId)!;
    const batchAfter = batch.filter((run) => finishedAt.get(run.runId)! > urgentAt).length;
    // batch concurrency is 2: most of the flood is still queued when the interactive run is done
    expect(batchAfter).toBeGreaterThanOrEqual(8);
  });

  it("starts one run for a duplicated event and acknowledges events with no trigger", async () => {
    fake.setHandler(() => ({ content: "handled" }));
    const eventId = `evt-${randomUUID()}`;
    const event = {
      specversion: "1.0" as const,
      id: eventId,
      source: "shop",
      type: "com.example.order.created",
      data: { order: 42 },
      tenant: "acme",
    };
    await bus.publishDurable(Subjects.events("shop", "com_example_order_created"), CloudEvent, event, {
      msgId: eventId,
    });
    await bus.publishDurable(Subjects.events("shop", "com_example_order_created"), CloudEvent, event, {
      msgId: eventId,
    });
    // past the JetStream duplicate window: a different message id, same event id
    await bus.publishDurable(Subjects.events("shop", "com_example_order_created"), CloudEvent, event, {
      msgId: `${eventId}-late`,
    });
    await bus.publishDurable(Subjects.events("shop", "unrelated"), CloudEvent, {
      ...event,
      id: `${eventId}-x`,
      type: "com.example.unrelated",
    });
    let runs: { runId: string; status: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const list = await bus.request(Endpoints.runList, {
        meta: { v: 1, tenant: "acme", requestId: "l", deadline: Date.now() + 5000 },
        agent: "eventer",
        limit: 10,
      });
      runs = list.runs;
      if (runs.length > 0 && runs.every((run) => run.status === "completed")) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const list = await bus.request(Endpoints.runList, {
      meta: { v: 1, tenant: "acme", requestId: "l", deadline: Date.now() + 5000 },
      agent: "eventer",
      limit: 10,
    });
    expect(list.runs).toHaveLength(1);
    expect(list.runs[0]?.status).toBe("completed");
    expect(list.runs[0]?.priority).toBe("batch");
  });

  it("plans on the fast tier and executes on the strong tier; simple requests skip planning", async () => {
    fake.setHandler((body) => {
      const system = String(body.messages[0]?.content ?? "");
      if (system.includes("Break the user's request")) {
        return { content: JSON.stringify({ steps: ["compute the sum", "explain it"] }) };
      }
      return { content: `answered by ${body.model}` };
    });
    const before = fake.chatRequests().length;
    const complex = await (
      await startRun(
        "planned",
        "First add 17 and 25. Then explain how you did it. Finally, double-check the result carefully.",
      )
    ).done;
    const calls = fake.chatRequests().slice(before);
    expect(calls).toHaveLength(2);
    expect(calls[0]?.model).toBe("fake-fast");
    expect(calls[1]?.model).toBe("fake-strong");
    expect(JSON.stringify(calls[1]?.messages)).toContain("Follow this plan:\\n1. compute the sum");
    expect(complex.finished.output?.content).toBe("answered by fake-strong");
    expect(complex.events.some((event) => event.type === "step-started" && event.kind === "plan")).toBe(true);

    const simpleBefore = fake.chatRequests().length;
    const simple = await (await startRun("planned", "hi there")).done;
    expect(fake.chatRequests().length - simpleBefore).toBe(1);
    expect(simple.finished.output?.content).toBe("answered by fake-fast");
  });

  it("delegates a subtask to a specialist as a child run and rolls its cost up", async () => {
    fake.setHandler((body) => {
      const system = String(body.messages[0]?.content ?? "");
      if (system.startsWith("You research."))
        return { content: "the answer is 42", usage: { prompt_tokens: 1000, completion_tokens: 1000 } };
      const result = body.messages.find((message) => message.role === "tool");
      if (!result)
        return {
          toolCalls: [
            { id: "call_del", name: "delegate", arguments: { agent: "researcher", task: "find the answer" } },
          ],
        };
      return { content: `lead says: ${String(result.content)}` };
    });
    const { runId, done } = await startRun("lead", "what is the answer?");
    const { finished } = await done;
    expect(finished.status).toBe("completed");
    expect(finished.output?.content).toBe("lead says: the answer is 42");
    const meta = { v: 1 as const, tenant: "acme", requestId: "g", deadline: Date.now() + 5000 };
    const childId = `${runId}:child:0:0`; // step 0, the first call of its answer
    const child = await bus.request(Endpoints.runGet, { meta, runId: childId });
    const parent = await bus.request(Endpoints.runGet, { meta, runId });
    expect(child.run?.parentRunId).toBe(runId);
    expect(child.run?.agent).toBe("researcher");
    expect(child.run?.status).toBe("completed");
    // researcher: 2000 tokens at $1/M = $0.002, included in the parent's cost
    expect(child.run?.costUsd).toBeCloseTo(0.002, 6);
    expect(parent.run!.costUsd).toBeGreaterThan(child.run!.costUsd);
    expect(finished.costUsd).toBeCloseTo(parent.run!.costUsd, 9);
  });

  it("checks structured output against the schema and numeric bounds, with one repair attempt", async () => {
    fake.setHandler((body) => {
      const repairing = String(body.messages.at(-1)?.content ?? "").startsWith("Your answer is invalid");
      return { content: repairing ? '{"total": 5}' : "the total is five" };
    });
    const repaired = await (await startRun("structured", "sum it")).done;
    expect(repaired.finished.status).toBe("completed");
    expect(repaired.finished.output?.content).toBe('{"total": 5}');

    fake.setHandler(() => ({ content: '{"total": 5000}' }));
    const insane = await (await startRun("structured", "sum it")).done;
    expect(insane.finished.status).toBe("failed");
    expect(insane.finished.error?.code).toBe("guardrail_blocked");
    expect(insane.finished.error?.message).toMatch(/total: 5000 is above 1000/);
  });
});
