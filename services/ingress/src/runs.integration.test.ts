/**
 * Runs, threads and events APIs against the orchestrator driver: sync/async/stream runs,
 * tenant isolation, SSE resume with Last-Event-ID, event dedupe and tenant stamping,
 * queue-depth shedding and the batch overflow policy.
 */
import { randomUUID } from "node:crypto";
import { consume } from "@agent-runtime/bus";
import { CloudEvent, Endpoints, QueueGroups, RuntimeError } from "@agent-runtime/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ThreadMessagesBody } from "./api-schemas.js";
import { RunGateway } from "./run-gateway.js";
import { BOOTSTRAP_KEY, type Harness, parseSse, startHarness, until } from "./test-support/harness.js";
import { lastUserText, sleep, startOrchestratorDriver } from "./test-support/orchestrator-driver.js";

let harness: Harness;
let otherKey: string;

const http = (path: string, init: RequestInit & { key?: string } = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${init.key ?? BOOTSTRAP_KEY}`);
  if (init.body !== undefined && !headers.has("content-type"))
    headers.set("content-type", "application/json");
  return fetch(`${harness.url}${path}`, { ...init, headers });
};
const ids = (text: string) => parseSse(text).flatMap((frame) => (frame.id ? [Number(frame.id)] : []));

beforeAll(async () => {
  harness = await startHarness({
    agents: { notifier: { triggers: ["com.example.signup"] } },
    limits: { queues: { interactiveMaxDepth: 1000, batchMaxDepth: 2, batchOverflow: "shed" } },
  });
  otherKey = await harness.key("other");
  harness.driver.setScript(async (run) => {
    const text = lastUserText(run.request);
    run.emit({ type: "run-started", agent: run.request.agent, attempt: 1 });
    // "paced N": N deltas 60 ms apart, so a reader can be cut in the middle
    const paced = /^paced (\d+)$/.exec(text);
    const count = paced ? Number(paced[1]) : 2;
    for (let index = 0; index < count; index++) {
      if (paced) await sleep(60);
      run.emit({ type: "delta", step: 0, content: `part ${index} ` });
    }
    run.finish({ output: { role: "assistant", content: `done: ${text}` } });
  });
});

afterAll(async () => {
  await harness?.stop();
});

describe("runs API", () => {
  it("runs synchronously with wait, asynchronously with 202, or as an SSE stream", async () => {
    const waited = await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "sync please", wait: true, metadata: { ticket: "T-1" } }),
    });
    expect(waited.status).toBe(200);
    const run = (await waited.json()) as {
      id: string;
      status: string;
      object: string;
      output: { content: string };
      thread_id: string;
      usage: { total_tokens: number };
      cost_usd: number;
    };
    expect(run).toMatchObject({
      object: "run",
      status: "completed",
      output: { content: "done: sync please" },
    });
    expect(run.thread_id).toMatch(/^thread_/);
    expect(run.usage.total_tokens).toBeTypeOf("number");
    expect(run.cost_usd).toBeTypeOf("number");
    expect(run).not.toHaveProperty("runId");
    expect(harness.driver.runs.get(run.id)?.request).toMatchObject({
      source: "runs",
      metadata: { ticket: "T-1" },
    });

    const queued = await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: [{ role: "user", content: "async" }], thread_id: "thread_mine" }),
    });
    expect(queued.status).toBe(202);
    const accepted = (await queued.json()) as { id: string; status: string };
    expect(queued.headers.get("location")).toBe(`/v1/runs/${accepted.id}`);
    expect(accepted.status).toBe("queued");
    await until(async () => {
      const got = await http(`/v1/runs/${accepted.id}`);
      return got.status === 200 && ((await got.json()) as { status: string }).status === "completed";
    });

    const streamed = await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "stream", stream: true }),
    });
    expect(streamed.headers.get("content-type")).toMatch(/text\/event-stream/);
    const frames = parseSse(await streamed.text());
    expect(frames.map((frame) => frame.event)).toEqual(["run-started", "delta", "delta", "run-finished"]);
    expect(frames.every((frame) => Number(frame.id) > 0)).toBe(true);
    expect(streamed.headers.get("x-run-id")).toBe(JSON.parse(frames[0]!.data).run_id);
    const finished = JSON.parse(frames.at(-1)!.data) as Record<string, unknown>;
    expect(finished).toMatchObject({ type: "run-finished", status: "completed" });
    expect(Object.keys(finished)).toEqual(expect.arrayContaining(["run_id", "cost_usd", "usage"]));
    expect(finished).not.toHaveProperty("costUsd");
  });

  it("starts one run for requests retried with the same Idempotency-Key", async () => {
    const idempotencyKey = `retry-${randomUUID()}`;
    const post = (wait: boolean, key?: string) =>
      http("/v1/runs", {
        method: "POST",
        key,
        headers: { "idempotency-key": idempotencyKey },
        body: JSON.stringify({ input: "charge the card once", wait }),
      });
    const first = (await (await post(true)).json()) as { id: string; status: string };
    expect(first.status).toBe("completed");
    const retried = (await (await post(true)).json()) as { id: string; status: string; duplicate: boolean };
    expect(retried).toMatchObject({ id: first.id, status: "completed", duplicate: true });
    const async = await post(false);
    expect(async.status).toBe(202);
    expect(await async.json()).toMatchObject({ id: first.id, duplicate: true });
    expect([...harness.driver.runs.keys()].filter((id) => id === first.id)).toHaveLength(1);
    // another tenant's same key is another run
    const other = (await (await post(true, otherKey)).json()) as { id: string };
    expect(other.id).not.toBe(first.id);
    const bad = await http("/v1/runs", {
      method: "POST",
      headers: { "idempotency-key": "" },
      body: JSON.stringify({ input: "x" }),
    });
    expect(bad.status).toBe(400);
  });

  it("lists runs by thread, status and agent, page by page", async () => {
    const thread = `thread_${randomUUID()}`;
    for (let index = 0; index < 3; index++) {
      const response = await http("/v1/runs", {
        method: "POST",
        body: JSON.stringify({ input: `listed ${index}`, thread_id: thread, wait: true }),
      });
      expect(response.status).toBe(200);
    }
    const first = (await (await http(`/v1/runs?thread_id=${thread}&limit=2`)).json()) as {
      data: { object: string; thread_id: string }[];
      next_cursor: string | null;
    };
    expect(first.data).toHaveLength(2);
    expect(first.data.every((entry) => entry.object === "run" && entry.thread_id === thread)).toBe(true);
    expect(first.next_cursor).not.toBeNull();
    const second = (await (
      await http(`/v1/runs?thread_id=${thread}&limit=2&cursor=${first.next_cursor}`)
    ).json()) as {
      data: unknown[];
      next_cursor: string | null;
    };
    expect(second.data).toHaveLength(1);
    expect(second.next_cursor).toBeNull();
    const bad = await http("/v1/runs?status=sleeping");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("status");
  });

  it("keeps tenants apart: another tenant's run is not found, nor cancellable, nor streamable", async () => {
    const created = await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "private", wait: true }),
    });
    const { id } = (await created.json()) as { id: string };
    for (const [path, method] of [
      [`/v1/runs/${id}`, "GET"],
      [`/v1/runs/${id}/cancel`, "POST"],
      [`/v1/runs/${id}/events`, "GET"],
    ] as const) {
      const response = await http(path, { method, key: otherKey });
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
    }
    const listed = (await (await http("/v1/runs", { key: otherKey })).json()) as {
      data: { id: string; tenant: string }[];
    };
    expect(listed.data.map((entry) => entry.id)).not.toContain(id);
    expect(listed.data.every((entry) => entry.tenant === "other")).toBe(true);
    const eventsOnly = await harness.key("default", ["events"]);
    expect((await http(`/v1/runs/${id}`, { key: eventsOnly })).status).toBe(403);
  });

  it("resumes a run's event stream after a cut connection without losing or repeating an event", async () => {
    const created = await http("/v1/runs", { method: "POST", body: JSON.stringify({ input: "paced 8" }) });
    const { id } = (await created.json()) as { id: string };
    const controller = new AbortController();
    const first = await http(`/v1/runs/${id}/events`, { signal: controller.signal });
    const reader = first.body!.getReader();
    let text = "";
    while (ids(text).length < 3) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    controller.abort();
    const seen = ids(text).slice(0, 3); // a frame may be cut: keep the complete ones
    const resumed = await (
      await http(`/v1/runs/${id}/events`, { headers: { "last-event-id": String(seen.at(-1)) } })
    ).text();
    const full = await (await http(`/v1/runs/${id}/events`)).text();
    expect([...seen, ...ids(resumed)]).toEqual(ids(full));
    expect(parseSse(full).map((frame) => frame.event)).toEqual([
      "run-started",
      ...Array.from({ length: 8 }, () => "delta"),
      "run-finished",
    ]);
    // garbage Last-Event-ID replays from the start instead of failing
    const garbage = await http(`/v1/runs/${id}/events`, { headers: { "last-event-id": "abc" } });
    expect(ids(await garbage.text())).toEqual(ids(full));
  });

  it("cancels a running run through the orchestrator", async () => {
    harness.driver.setScript(async (run) => {
      run.emit({ type: "run-started", agent: run.request.agent, attempt: 1 });
      await run.cancelled;
    });
    try {
      const created = await http("/v1/runs", {
        method: "POST",
        body: JSON.stringify({ input: "to cancel" }),
      });
      const { id } = (await created.json()) as { id: string };
      await until(() => harness.driver.runs.has(id));
      const cancelled = await http(`/v1/runs/${id}/cancel`, { method: "POST" });
      expect(await cancelled.json()).toMatchObject({
        id,
        object: "run",
        status: "cancelled",
        cancelled: true,
      });
      const events = parseSse(await (await http(`/v1/runs/${id}/events`)).text());
      expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ type: "run-finished", status: "cancelled" });
    } finally {
      harness.driver.setScript(async (run) => run.finish({ output: { role: "assistant", content: "ok" } }));
    }
  });

  it("answers 503 with Retry-After while the orchestrator does not answer", async () => {
    await harness.driver.serveQueries(false);
    try {
      const response = await http("/v1/runs/run_whatever");
      expect(response.status).toBe(503);
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await harness.driver.serveQueries(true);
    }
    // a downstream `overloaded` answer is a 503 too
    const busy = harness.bus.serve(
      Endpoints.memoryMessages,
      async () => {
        throw new RuntimeError("overloaded", "memory is at its limit", { retryAfterMs: 3000 });
      },
      { queue: QueueGroups.memory, maxInFlight: 4 },
    );
    await harness.bus.nc.flush(); // the subscription is on the server before the request
    try {
      const response = await http("/v1/threads/thread_x/messages");
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("3");
    } finally {
      await busy.stop();
    }
  });
});

describe("batch runs and backpressure", () => {
  it("sheds batch runs past their queue bound with 429 and Retry-After, and sheds interactive runs past theirs", async () => {
    // nobody pulls batch runs here: they pile up as behind busy workers
    await harness.driver.stop();
    try {
      for (let index = 0; index < 2; index++) {
        const response = await http("/v1/runs", {
          method: "POST",
          body: JSON.stringify({ input: `batch ${index}`, priority: "batch" }),
        });
        expect(response.status).toBe(202);
      }
      await sleep(300); // queue depth is sampled every 250 ms
      const shed = await http("/v1/runs", {
        method: "POST",
        body: JSON.stringify({ input: "one more", priority: "batch" }),
      });
      expect(shed.status).toBe(429);
      expect(Number(shed.headers.get("retry-after"))).toBeGreaterThanOrEqual(30);
      const body = (await shed.json()) as {
        error: { type: string; details: { limit: string; depth: number } };
      };
      expect(body.error.type).toBe("rate_limit_error");
      expect(body.error.details).toMatchObject({ limit: "batch queue depth", depth: 2 });
      // interactive runs have their own lane and bound
      const interactive = await http("/v1/runs", {
        method: "POST",
        body: JSON.stringify({ input: "chat lane" }),
      });
      expect(interactive.status).toBe(202);
      // the "queue" policy keeps accepting batch runs past the bound, up to the hard bound
      const queueing = new RunGateway(harness.bus, {
        interactiveMaxDepth: 1000,
        batchMaxDepth: 1,
        batchOverflow: "queue",
        batchHardMaxDepth: 3,
      });
      expect(await queueing.admit("batch")).toEqual({ depth: 2 });
      const hard = new RunGateway(harness.bus, {
        interactiveMaxDepth: 1,
        batchMaxDepth: 1,
        batchOverflow: "queue",
        batchHardMaxDepth: 2,
      });
      await expect(hard.admit("batch")).rejects.toMatchObject({ code: "rate_limited", retryAfterMs: 30_000 });
      await expect(hard.admit("interactive")).rejects.toMatchObject({
        code: "rate_limited",
        details: { limit: "interactive queue depth", depth: 1 },
      });
    } finally {
      harness.driver = await startOrchestratorDriver(harness.bus);
    }
  });
});

describe("threads API", () => {
  it("reads and deletes a thread through the memory service, per tenant", async () => {
    const messages = harness.bus.serve(
      Endpoints.memoryMessages,
      async (request) => ({
        threadId: request.threadId,
        found: request.meta.tenant === "default" && request.threadId === "thread_known",
        messages:
          request.meta.tenant === "default" && request.threadId === "thread_known"
            ? [
                {
                  id: "m1",
                  message: { role: "user" as const, content: "hello" },
                  tokens: 1,
                  createdAt: new Date().toISOString(),
                },
              ]
            : [],
      }),
      { queue: QueueGroups.memory, maxInFlight: 4 },
    );
    const forget = harness.bus.serve(
      Endpoints.memoryForget,
      async (request) => ({
        deleted: {
          threads: request.meta.tenant === "default" && request.threadId === "thread_known" ? 1 : 0,
          messages: 1,
          documents: 0,
          chunks: 0,
        },
      }),
      { queue: QueueGroups.memory, maxInFlight: 4 },
    );
    // a thread's runs are forgotten before its messages (none here)
    const forgetRuns = harness.bus.serve(
      Endpoints.runForget,
      async () => ({ runs: 0, steps: 0, cancelled: 0, threadIds: [], more: false }),
      { queue: QueueGroups.orchestrator, maxInFlight: 4 },
    );
    await harness.bus.nc.flush();
    try {
      const mine = await http("/v1/threads/thread_known/messages?limit=10");
      expect(mine.status).toBe(200);
      const page = ThreadMessagesBody.strict().parse(await mine.json());
      expect(page).toMatchObject({ object: "list", thread_id: "thread_known" });
      expect(page.data).toHaveLength(1);
      expect(page.data[0]).toMatchObject({ id: "m1", tokens: 1, created_at: expect.any(String) });
      expect(page.data[0]).not.toHaveProperty("createdAt");
      expect((await http("/v1/threads/thread_known/messages", { key: otherKey })).status).toBe(404);
      expect((await http("/v1/threads/thread_known", { method: "DELETE", key: otherKey })).status).toBe(404);
      expect((await http("/v1/threads/thread_known/messages?limit=0")).status).toBe(400);
      const deleted = await http("/v1/threads/thread_known", { method: "DELETE" });
      expect(await deleted.json()).toMatchObject({ id: "thread_known", deleted: true });
    } finally {
      await messages.stop();
      await forget.stop();
      await forgetRuns.stop();
    }
  });
});

describe("events API", () => {
  it("stores each CloudEvent once per id, stamps the key's tenant, and answers 202 after the store", async () => {
    const received: CloudEvent[] = [];
    const reader = await consume(harness.bus, {
      stream: "EVENTS",
      durable: `test-${randomUUID().slice(0, 8)}`,
      schema: CloudEvent,
      concurrency: 1,
      deadLetterOrigin: "test",
      handler: async (event) => {
        received.push(event);
      },
    });
    try {
      const event = {
        specversion: "1.0",
        id: `evt-${randomUUID()}`,
        source: "https://shop.example/api",
        type: "com.example.signup",
        tenant: "someone-else",
        data: { user: "ada" },
      };
      const first = await http("/v1/events", { method: "POST", body: JSON.stringify(event) });
      expect(first.status).toBe(202);
      const second = await http("/v1/events", {
        method: "POST",
        body: JSON.stringify([event, { ...event, id: `evt-${randomUUID()}` }]),
      });
      const accepted = ((await second.json()) as { accepted: { duplicate: boolean }[] }).accepted;
      expect(accepted.map((entry) => entry.duplicate)).toEqual([true, false]);
      // another tenant may use the same id: it is a different event
      const other = await http("/v1/events", { method: "POST", body: JSON.stringify(event), key: otherKey });
      expect(((await other.json()) as { accepted: { duplicate: boolean }[] }).accepted[0]?.duplicate).toBe(
        false,
      );
      await until(() => received.length === 3);
      expect(received.map((entry) => entry.tenant).sort()).toEqual(["default", "default", "other"]);
      const bad = await http("/v1/events", {
        method: "POST",
        body: JSON.stringify({ ...event, specversion: "0.3" }),
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { param: string } }).error.param).toMatch(/specversion/);
      expect((await http("/v1/events", { method: "POST", body: "[]" })).status).toBe(400);
    } finally {
      await reader.stop();
    }
  });
});
