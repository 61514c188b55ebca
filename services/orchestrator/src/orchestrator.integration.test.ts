/**
 * The orchestrator against the real model-proxy, tool-executor and memory services (in this
 * process), real NATS, Postgres and Redis, and the testkit's fake model server.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CloudEvent, Endpoints, type RunEvent, Subjects } from "@agent-runtime/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, runtimeConfig, sleep, startHarness, TENANT, until } from "./test-support/harness.js";

let harness: Harness;
let hook: Server;
const actions: string[] = [];

const meta = (tenant = TENANT) => ({
  v: 1 as const,
  tenant,
  requestId: randomUUID(),
  deadline: Date.now() + 5000,
});
const lastUserText = (body: { messages: Array<{ role: string; content?: unknown }> }) =>
  String([...body.messages].reverse().find((message) => message.role === "user")?.content ?? "");
const finishedCount = (events: RunEvent[]) => events.filter((event) => event.type === "run-finished").length;

beforeAll(async () => {
  hook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      actions.push(body);
      response.end(JSON.stringify({ done: true }));
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  harness = await startHarness(
    runtimeConfig(
      {
        worker: { tools: ["calculator", "act"], maxSteps: 6 },
        plain: {},
        quick: { timeBudgetMs: 1500 },
        checked: { guardrails: { outputDenyPatterns: ["TOP SECRET"], redactPii: ["email"] } },
        eventer: { triggers: ["com.example.*"] },
      },
      {
        webhooks: {
          act: {
            description: "performs an action (side effect)",
            url: `${hookUrl}/act`,
            method: "POST",
            sideEffects: true,
            allowPrivateNetwork: true,
            parameters: { type: "object", properties: { what: { type: "string" } } },
          },
        },
      },
    ),
    { BATCH_CONCURRENCY: "1", RUN_ACK_WAIT_MS: "2000" },
  );
  await harness.startOrchestrator();
});

afterAll(async () => {
  await harness?.stop();
  hook?.close();
});

describe("orchestrator service", () => {
  it("records a runs-API run as queued before a worker takes it, for its own tenant only, never moving a run back", async () => {
    harness.fake.setHandler((body) => ({ content: `answered: ${lastUserText(body)}` }));
    const runId = `run_${randomUUID()}`;
    const run = {
      v: 1 as const,
      runId,
      tenant: TENANT,
      agent: "plain",
      input: [{ role: "user" as const, content: "registered first" }],
      priority: "interactive" as const,
      createdAt: Date.now(),
      deadline: Date.now() + 30_000,
      source: "runs" as const,
    };
    await expect(
      harness.bus.request(Endpoints.runRegister, { meta: meta("evil"), run }),
    ).rejects.toMatchObject({ code: "forbidden" });
    await harness.bus.request(Endpoints.runRegister, { meta: meta(), run });
    const queued = await harness.bus.request(Endpoints.runGet, { meta: meta(), runId });
    expect(queued.run?.status).toBe("queued");

    const started = await harness.startRun("plain", "registered first", { runId, source: "runs" });
    expect((await started.done).finished.status).toBe("completed");
    // a registration arriving late (retried) leaves the finished run as it is
    await harness.bus.request(Endpoints.runRegister, { meta: meta(), run });
    const after = await harness.bus.request(Endpoints.runGet, { meta: meta(), runId });
    expect(after.run?.status).toBe("completed");
  });

  it("shows a queued run and cancels it before a worker takes it", async () => {
    harness.fake.setHandler((body) =>
      lastUserText(body) === "block the batch lane"
        ? { content: "finally", latencyMs: 1200 }
        : { content: `answered: ${lastUserText(body)}` },
    );
    const blocker = await harness.startRun("plain", "block the batch lane", { priority: "batch" });
    await until(() =>
      harness.fake.chatRequests().some((body) => lastUserText(body) === "block the batch lane"),
    );
    const queued = await harness.startRun("plain", "never to be answered", { priority: "batch" });

    // batch concurrency is 1: the second run waits, and is already visible as queued
    let status: string | undefined;
    await until(async () => {
      status = (await harness.bus.request(Endpoints.runGet, { meta: meta(), runId: queued.runId })).run
        ?.status;
      return status !== undefined;
    });
    expect(status).toBe("queued");
    const listed = await harness.bus.request(Endpoints.runList, {
      meta: meta(),
      status: "queued",
      limit: 10,
    });
    expect(listed.runs.map((run) => run.runId)).toContain(queued.runId);
    const otherTenant = await harness.bus.request(Endpoints.runGet, {
      meta: meta("evil"),
      runId: queued.runId,
    });
    expect(otherTenant.run).toBeNull();

    const cancel = await harness.bus.request(Endpoints.runCancel, { meta: meta(), runId: queued.runId });
    expect(cancel).toMatchObject({ cancelled: true, status: "cancelled" });
    // the client hears at once, not when a worker gets to the run
    const first = await Promise.race([
      queued.done.then(() => "cancelled run"),
      blocker.done.then(() => "blocker"),
    ]);
    expect(first).toBe("cancelled run");
    const { finished } = await queued.done;
    expect(finished.status).toBe("cancelled");
    expect(finished.error?.code).toBe("cancelled");
    expect((await blocker.done).finished.status).toBe("completed");
    // the worker takes the cancelled run later, does not run it and does not announce it again
    await until(async () => {
      const rows = await harness.db.query("SELECT attempts FROM runs WHERE id = $1", [queued.runId]);
      return rows.rows[0]?.attempts === 1;
    });
    await sleep(300);
    expect(harness.fake.chatRequests().some((body) => lastUserText(body) === "never to be answered")).toBe(
      false,
    );
    expect(finishedCount(queued.events)).toBe(1);
  });

  it("counts the time budget from when the run starts, not while it waits in the queue", async () => {
    harness.fake.setHandler((body) =>
      lastUserText(body) === "hold the lane"
        ? { content: "held", latencyMs: 2000 }
        : { content: `quick: ${lastUserText(body)}` },
    );
    const blocker = await harness.startRun("plain", "hold the lane", { priority: "batch" });
    await until(() => harness.fake.chatRequests().some((body) => lastUserText(body) === "hold the lane"));
    // waits about 2 s behind the blocker, longer than its own 1.5 s budget
    const waiting = await harness.startRun("quick", "after the wait", { priority: "batch" });
    const [first, second] = await Promise.all([blocker.done, waiting.done]);
    expect(first.finished.status).toBe("completed");
    expect(second.finished.status).toBe("completed");
    expect(second.finished.output?.content).toBe("quick: after the wait");
    const record = await harness.bus.request(Endpoints.runGet, { meta: meta(), runId: waiting.runId });
    expect(Date.parse(record.run!.finishedAt!) - Date.parse(record.run!.createdAt)).toBeGreaterThan(1500);
  });

  it("fails a run whose deadline passed before it started, without calling the model", async () => {
    const calls = harness.fake.chatRequests().length;
    const run = await harness.startRun("plain", "too late", { deadline: Date.now() - 1 });
    const { finished } = await run.done;
    expect(finished.status).toBe("failed");
    expect(finished.error).toMatchObject({ code: "timeout", retryable: false });
    expect(finished.error?.message).toMatch(/deadline passed before it started/);
    expect(harness.fake.chatRequests().length).toBe(calls);
  });

  it("finishes a run once when its request is delivered again after it finished", async () => {
    harness.fake.setHandler(() => ({ content: "only once" }));
    const run = await harness.startRun("plain", "answer me");
    expect((await run.done).finished.status).toBe("completed");
    const calls = harness.fake.chatRequests().length;
    // the same run again (as after a crash between the finish and the ack)
    await harness.startRun("plain", "answer me", { runId: run.runId });
    await until(async () => {
      const rows = await harness.db.query("SELECT attempts FROM runs WHERE id = $1", [run.runId]);
      return rows.rows[0]?.attempts === 2;
    });
    await sleep(300);
    expect(finishedCount(run.events)).toBe(1);
    expect(harness.fake.chatRequests().length).toBe(calls);
  });

  it("streams the answer's deltas but not the calls of the server's own tools", async () => {
    harness.fake.setHandler((body) =>
      body.messages.some((message) => message.role === "tool")
        ? { content: "two and two make four" }
        : { toolCalls: [{ name: "calculator", arguments: { expression: "2+2" } }] },
    );
    const run = await harness.startRun("worker", "what is 2+2?", { stream: true });
    const { events, finished } = await run.done;
    expect(finished.status).toBe("completed");
    const deltas = events.flatMap((event) => (event.type === "delta" ? [event] : []));
    expect(deltas.some((delta) => delta.toolCalls?.length)).toBe(false);
    expect(deltas.map((delta) => delta.content ?? "").join("")).toBe("two and two make four");
    expect(finished.output?.content).toBe("two and two make four");
  });

  it("holds a streamed answer back until it passes the output checks", async () => {
    harness.fake.setHandler(() => ({ content: "this is TOP SECRET material" }));
    const blocked = await (await harness.startRun("checked", "tell me", { stream: true })).done;
    expect(blocked.finished.status).toBe("failed");
    expect(blocked.finished.error?.code).toBe("guardrail_blocked");
    expect(blocked.events.filter((event) => event.type === "delta")).toHaveLength(0);

    harness.fake.setHandler(() => ({ content: "a perfectly ordinary answer" }));
    const passed = await (await harness.startRun("checked", "tell me again", { stream: true })).done;
    expect(passed.finished.status).toBe("completed");
    const deltas = passed.events.flatMap((event) => (event.type === "delta" ? [event] : []));
    expect(deltas.map((delta) => delta.content)).toEqual(["a perfectly ordinary answer"]);
  });

  it("returns only the client's tool calls when a turn mixes them with server tools", async () => {
    harness.fake.setHandler(() => ({
      toolCalls: [
        { id: "call_server", name: "act", arguments: { what: "should not happen" } },
        { id: "call_client", name: "get_weather", arguments: { city: "Oslo" } },
      ],
    }));
    const before = actions.length;
    const run = await harness.startRun("worker", "weather in Oslo?", {
      clientTools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            parameters: { type: "object", properties: { city: { type: "string" } } },
          },
        },
      ],
    });
    const { finished } = await run.done;
    expect(finished.status).toBe("completed");
    expect(finished.finishReason).toBe("tool_calls");
    expect(finished.output?.tool_calls?.map((call) => call.function.name)).toEqual(["get_weather"]);
    expect(finished.output?.tool_calls?.[0]?.function.arguments).toBe('{"city":"Oslo"}');
    expect(actions.length).toBe(before);
    const offered = harness.fake
      .chatRequests()
      .at(-1)
      ?.tools?.map((tool) => tool.function.name);
    expect(offered).toEqual(expect.arrayContaining(["calculator", "act", "get_weather"]));
  });

  it("fails a run with invalid client tools with a validation error", async () => {
    const run = await harness.startRun("plain", "hello", {
      clientTools: [{ type: "function", function: {} }],
    });
    const { finished } = await run.done;
    expect(finished.status).toBe("failed");
    expect(finished.error?.code).toBe("validation");
  });

  it("redacts PII in the text parts of multi-part messages before the model sees them", async () => {
    harness.fake.setHandler(() => ({ content: "noted" }));
    const run = await harness.startRun("checked", [
      {
        role: "user",
        content: [
          { type: "text", text: "write to ada@example.com" },
          { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
        ],
      },
    ]);
    expect((await run.done).finished.status).toBe("completed");
    const seen = JSON.stringify(harness.fake.chatRequests().at(-1)?.messages);
    expect(seen).not.toContain("ada@example.com");
    expect(seen).toContain("write to [email]");
    expect(seen).toContain("https://example.com/cat.png");
  });

  it("starts the run of an event whose claim was recorded but never published", async () => {
    harness.fake.setHandler(() => ({ content: "event handled" }));
    const eventId = `evt-${randomUUID()}`;
    const runId = `run_${randomUUID()}`;
    // a worker claimed the event, then died before the run reached the RUNS stream
    await harness.db.query(
      "INSERT INTO event_runs (tenant, event_id, agent, run_id, published) VALUES ($1, $2, 'eventer', $3, false)",
      [TENANT, eventId, runId],
    );
    const event = {
      specversion: "1.0" as const,
      id: eventId,
      source: "shop",
      type: "com.example.paid",
      tenant: TENANT,
    };
    await harness.bus.publishDurable(Subjects.events("shop", "paid"), CloudEvent, event, { msgId: eventId });
    let status: string | undefined;
    await until(async () => {
      status = (await harness.bus.request(Endpoints.runGet, { meta: meta(), runId })).run?.status;
      return status === "completed";
    });
    const claim = await harness.db.query("SELECT published FROM event_runs WHERE event_id = $1", [eventId]);
    expect(claim.rows).toEqual([{ published: true }]);
    // delivered again past the duplicate window: no second run
    await harness.bus.publishDurable(Subjects.events("shop", "paid"), CloudEvent, event, {
      msgId: `${eventId}-again`,
    });
    await sleep(500);
    const runs = await harness.bus.request(Endpoints.runList, { meta: meta(), agent: "eventer", limit: 10 });
    expect(runs.runs.filter((run) => run.runId === runId)).toHaveLength(1);
    expect(runs.runs).toHaveLength(1);
  });

  // last: it stops the first orchestrator
  it("hands a run to another worker when its worker drains, after the step in flight", async () => {
    harness.fake.setHandler((body) =>
      body.messages.some((message) => message.role === "tool")
        ? { content: "acted and done" }
        : { toolCalls: [{ id: "call_act", name: "act", arguments: { what: "ship" } }], latencyMs: 800 },
    );
    const before = { actions: actions.length, calls: harness.fake.chatRequests().length };
    const run = await harness.startRun("worker", "please act");
    await until(() => harness.fake.chatRequests().length > before.calls);
    const [first] = harness.orchestrators;
    // SIGTERM: the first worker finishes its model call and tool call, then gives the run back
    const draining = first!.stop();
    await harness.startOrchestrator();
    const { events, finished } = await run.done;
    await draining;
    expect(finished.status).toBe("completed");
    expect(finished.output?.content).toBe("acted and done");
    expect(finished.steps).toBe(2);
    expect(actions.length - before.actions).toBe(1);
    expect(harness.fake.chatRequests().length - before.calls).toBe(2);
    expect(events.flatMap((event) => (event.type === "run-started" ? [event.attempt] : []))).toEqual([1, 2]);
    await sleep(300);
    expect(finishedCount(events)).toBe(1);
  });
});
