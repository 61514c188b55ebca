import { randomUUID } from "node:crypto";
import {
  Endpoints,
  RunEvent,
  RuntimeError,
  Streams,
  Subjects,
  TERMINAL_RUN_STATUSES,
} from "@agent-runtime/contracts";
import { DeliverPolicy } from "@nats-io/jetstream";
import type { FastifyInstance } from "fastify";
import { CreateRunBody, ListRunsQuery } from "./api-schemas.js";
import { parseBody } from "./http-errors.js";
import type { RouteDeps } from "./route-deps.js";

const meta = (tenant: string) => ({
  v: 1 as const,
  tenant,
  requestId: randomUUID(),
  deadline: Date.now() + 10_000,
});
const RunIdParams = (params: unknown) => {
  const id = (params as { id?: string }).id ?? "";
  if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(id))
    throw new RuntimeError("validation", "invalid id in the path", { retryable: false });
  return id;
};

/** Native runs API and threads API. */
export function registerRunRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post("/v1/runs", async (request, reply) => {
    const key = await deps.authenticate(request, "runs");
    const body = parseBody(CreateRunBody, request.body);
    const agent = deps.agents[body.agent];
    if (!agent || (agent.tenants.length > 0 && !agent.tenants.includes(key.tenant))) {
      throw new RuntimeError("not_found", `no agent named "${body.agent}"`, { retryable: false });
    }
    await deps.runs.admit(body.priority);
    const release = await deps.limit(key.tenant, body.user, { run: true });
    const run = await deps.runs.submit({
      tenant: key.tenant,
      agent: body.agent,
      input: typeof body.input === "string" ? [{ role: "user", content: body.input }] : body.input,
      threadId: body.thread_id ?? `thread_${randomUUID()}`,
      ...(body.user ? { userId: body.user } : {}),
      priority: body.priority,
      stream: false,
      source: "runs",
      timeoutMs: body.priority === "batch" ? 24 * 3600_000 : deps.runTimeoutMs,
      ...(body.metadata ? { metadata: body.metadata } : {}),
    });
    if (!body.wait) {
      if (body.priority === "batch") {
        // batch runs queue by design: they do not hold a concurrent-run slot or a subscription
        release();
        run.close();
      } else {
        // the slot is held until the run finishes, even though the client does not wait
        run.finished.then(release, release);
      }
      return reply
        .code(202)
        .header("location", `/v1/runs/${run.runId}`)
        .send({ id: run.runId, status: "queued" });
    }
    const finished = await run.finished.finally(release);
    const record = await deps.bus.request(Endpoints.runGet, { meta: meta(key.tenant), runId: run.runId });
    return {
      id: run.runId,
      ...(record.run ?? {}),
      status: finished.status,
      output: finished.output ?? null,
      error: finished.error ?? null,
    };
  });

  app.get("/v1/runs", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const query = parseBody(ListRunsQuery, request.query);
    const result = await deps.bus.request(Endpoints.runList, {
      meta: meta(key.tenant),
      limit: query.limit,
      ...(query.thread_id ? { threadId: query.thread_id } : {}),
      ...(query.status ? { status: query.status } : {}),
      ...(query.agent ? { agent: query.agent } : {}),
      ...(query.cursor ? { cursor: query.cursor } : {}),
    });
    return { object: "list", data: result.runs, next_cursor: result.nextCursor };
  });

  app.get("/v1/runs/:id", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const runId = RunIdParams(request.params);
    const result = await deps.bus.request(Endpoints.runGet, { meta: meta(key.tenant), runId });
    if (!result.run) throw new RuntimeError("not_found", `no run ${runId}`, { retryable: false });
    return result.run;
  });

  app.post("/v1/runs/:id/cancel", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const runId = RunIdParams(request.params);
    return deps.bus.request(Endpoints.runCancel, {
      meta: meta(key.tenant),
      runId,
      reason: "cancelled through the API",
    });
  });

  // SSE of a run's events from the RUN_EVENTS stream; `id:` is the stream sequence, so Last-Event-ID resumes exactly
  app.get("/v1/runs/:id/events", async (request, reply) => {
    const key = await deps.authenticate(request, "runs");
    const runId = RunIdParams(request.params);
    const found = await deps.bus.request(Endpoints.runGet, { meta: meta(key.tenant), runId });
    if (!found.run) throw new RuntimeError("not_found", `no run ${runId}`, { retryable: false });
    const lastEventId = Number(
      request.headers["last-event-id"] ?? (request.query as { after?: string }).after ?? 0,
    );
    const consumer = await deps.bus.js.consumers.get(deps.bus.streamName(Streams.runEvents), {
      filter_subjects: deps.bus.subject(Subjects.runEvents(runId)),
      ...(Number.isFinite(lastEventId) && lastEventId > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastEventId + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const finishedRun = TERMINAL_RUN_STATUSES.has(found.run.status) ? found.run : undefined;
    if (finishedRun && (await consumer.info()).num_pending === 0) {
      // nothing (left) to replay for a finished run: after a resume the client is done; if the events
      // have expired it learns the outcome from the run record
      if (!(lastEventId > 0)) {
        const event = {
          type: "run-finished",
          runId,
          seq: 0,
          ts: Date.parse(finishedRun.finishedAt ?? finishedRun.updatedAt),
          status: finishedRun.status,
          ...(finishedRun.output ? { output: finishedRun.output } : {}),
          usage: finishedRun.usage,
          costUsd: finishedRun.costUsd,
          steps: finishedRun.steps,
          ...(finishedRun.error ? { error: finishedRun.error } : {}),
        };
        raw.write(`event: run-finished\ndata: ${JSON.stringify(event)}\n\n`);
      }
      await consumer.delete().catch(() => undefined);
      raw.end();
      return reply;
    }
    const messages = await consumer.consume();
    let closed = false;
    request.raw.on("close", () => {
      closed = true;
      void messages.close();
    });
    const idle = setInterval(() => raw.write(": keep-alive\n\n"), 15_000);
    try {
      for await (const message of messages) {
        const parsed = RunEvent.safeParse(message.json());
        if (parsed.success) {
          raw.write(
            `id: ${message.seq}\nevent: ${parsed.data.type}\ndata: ${JSON.stringify(parsed.data)}\n\n`,
          );
          if (parsed.data.type === "run-finished") break;
        }
        // a finished run ends the stream once everything stored has been replayed
        if (finishedRun && message.info.pending === 0) break;
      }
    } finally {
      clearInterval(idle);
      if (!closed) {
        await messages.close().catch(() => undefined);
        raw.end();
      }
    }
    return reply;
  });

  app.get("/v1/threads/:id/messages", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const threadId = RunIdParams(request.params);
    const limit = Math.min(
      1000,
      Math.max(1, Number((request.query as { limit?: string }).limit ?? 100) || 100),
    );
    const result = await deps.bus.request(Endpoints.memoryMessages, {
      meta: meta(key.tenant),
      threadId,
      limit,
    });
    if (!result.found) throw new RuntimeError("not_found", `no thread ${threadId}`, { retryable: false });
    return { object: "list", thread_id: threadId, data: result.messages };
  });

  app.delete("/v1/threads/:id", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const threadId = RunIdParams(request.params);
    const result = await deps.bus.request(Endpoints.memoryForget, { meta: meta(key.tenant), threadId });
    if (result.deleted.threads === 0)
      throw new RuntimeError("not_found", `no thread ${threadId}`, { retryable: false });
    return { id: threadId, deleted: true, ...result.deleted };
  });
}
