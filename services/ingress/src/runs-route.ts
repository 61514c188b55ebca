import { createHash, randomUUID } from "node:crypto";
import { agentOpenTo, isListedAgent } from "@agent-runtime/config";
import {
  Endpoints,
  ID_PATTERN,
  type RequestMeta,
  RuntimeError,
  TERMINAL_RUN_STATUSES,
} from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import { CreateRunBody, ListRunsQuery, ThreadMessagesQuery } from "./api-schemas.js";
import { parseBody } from "./http-errors.js";
import { setRateHeaders } from "./response-headers.js";
import type { RouteDeps } from "./route-deps.js";
import { lastEventIdOf, streamRunEvents } from "./run-events-sse.js";
import { cancelledView, errorView, runView, threadMessageView, usageView } from "./run-view.js";

const BATCH_DEADLINE_MS = 24 * 3600_000;

export const metaFor = (tenant: string, timeoutMs = 10_000): RequestMeta => ({
  v: 1,
  tenant,
  requestId: randomUUID(),
  deadline: Date.now() + timeoutMs,
});

/**
 * `Idempotency-Key` → a run id of its own per tenant, so a retried POST /v1/runs is
 * recognised by JetStream's duplicate window (2 min) instead of starting a second run.
 */
function idempotentRunId(tenant: string, header: unknown): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== "string" || !/^[\x21-\x7e]{1,200}$/.test(header)) {
    throw new RuntimeError("validation", "Idempotency-Key must be 1-200 visible ASCII characters", {
      retryable: false,
      details: [{ path: "idempotency-key", message: "1-200 visible ASCII characters" }],
    });
  }
  return `run_${createHash("sha256").update(`${tenant}\n${header}`).digest("hex").slice(0, 32)}`;
}

export function idParam(params: unknown): string {
  const id = (params as { id?: string }).id ?? "";
  if (!ID_PATTERN.test(id)) {
    throw new RuntimeError("validation", "invalid id in the path", {
      retryable: false,
      details: [{ path: "id", message: "1-200 letters, digits, '_', '.', ':' or '-'" }],
    });
  }
  return id;
}

/** How long the events of a run with no row yet are waited for (a run accepted an instant ago). */
const NEW_RUN_WAIT_MS = 2000;

/**
 * The run's record. A run accepted an instant ago has no row until a worker takes it: its events
 * route waits a moment for it rather than answer 404 to the client that was just given its id.
 */
async function findRun(deps: RouteDeps, tenant: string, runId: string) {
  const until = Date.now() + NEW_RUN_WAIT_MS;
  for (let pause = 50; ; pause = Math.min(pause * 2, 400)) {
    const found = await deps.bus.request(Endpoints.runGet, { meta: metaFor(tenant), runId });
    if (found.run || Date.now() + pause > until) return found;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** Native runs API: create (sync with `wait`, async 202, or SSE with `stream`), get, list, cancel, events. */
export function registerRunRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post("/v1/runs", async (request, reply) => {
    const acceptedAt = new Date().toISOString();
    const key = await deps.authenticate(request, "runs");
    const body = parseBody(CreateRunBody, request.body);
    const agent = deps.agents[body.agent];
    if (!agent || !isListedAgent(body.agent) || !agentOpenTo(agent, key.tenant)) {
      throw new RuntimeError("not_found", `no agent named "${body.agent}"; GET /v1/models lists the agents`, {
        retryable: false,
        details: [{ path: "agent", message: "unknown agent" }],
      });
    }
    const runId = idempotentRunId(key.tenant, request.headers["idempotency-key"]);
    const { depth } = await deps.runs.admit(body.priority);
    const follows = body.wait || body.stream;
    const batch = body.priority === "batch";
    // a run holds a concurrent-run lease while it may run; queued batch runs wait in JetStream instead
    const deadlineMs = batch ? BATCH_DEADLINE_MS : deps.runTimeoutMs;
    const release = await deps.limit(key.tenant, body.user, {
      ...(!batch || follows ? { runLeaseMs: Math.min(deadlineMs, deps.runTimeoutMs) + 30_000 } : {}),
    });
    setRateHeaders(reply, release);
    let run: Awaited<ReturnType<typeof deps.runs.submit>>;
    try {
      run = await deps.runs.submit({
        ...(runId ? { runId } : {}),
        tenant: key.tenant,
        agent: body.agent,
        input: typeof body.input === "string" ? [{ role: "user", content: body.input }] : body.input,
        threadId: body.thread_id ?? `thread_${randomUUID()}`,
        ...(body.user ? { userId: body.user } : {}),
        priority: body.priority,
        stream: body.stream,
        source: "runs",
        timeoutMs: deadlineMs,
        followMs: deps.runTimeoutMs,
        detached: batch && !follows,
        ...(body.metadata ? { metadata: body.metadata } : {}),
        ...(body.deep_analysis ? { deepAnalysis: true } : {}),
      });
    } catch (error) {
      release();
      throw error;
    }
    // a retried request: the first one holds the lease
    if (run.duplicate) release();
    else run.finished.then(release, release);
    reply.header("x-run-id", run.runId);
    if (body.stream) {
      // events come from the RUN_EVENTS stream, so this response is resumable like GET /v1/runs/:id/events
      return streamRunEvents(deps, reply, { runId: run.runId, after: 0, headers: { "x-run-id": run.runId } });
    }
    if (!body.wait) {
      if (batch) release();
      return reply
        .code(202)
        .header("location", `/v1/runs/${run.runId}`)
        .send({
          id: run.runId,
          object: "run",
          status: "queued",
          priority: body.priority,
          queue_depth: depth,
          ...(run.duplicate ? { duplicate: true } : {}),
        });
    }
    if (run.duplicate) {
      // the first request's run may be over already: answer from its record
      const known = await deps.bus.request(Endpoints.runGet, { meta: metaFor(key.tenant), runId: run.runId });
      if (known.run && TERMINAL_RUN_STATUSES.has(known.run.status)) {
        run.close();
        return { ...runView(known.run), duplicate: true };
      }
    }
    const finished = await run.finished;
    const record = await deps.bus
      .request(Endpoints.runGet, { meta: metaFor(key.tenant), runId: run.runId })
      .catch(() => ({ run: null }));
    // the record (when it can be read) with the outcome the run's own run-finished event told
    const at = new Date().toISOString();
    return {
      ...(record.run
        ? runView(record.run)
        : runView({
            runId: run.runId,
            tenant: key.tenant,
            agent: body.agent,
            status: finished.status,
            priority: body.priority,
            threadId: finished.threadId ?? body.thread_id ?? null,
            userId: body.user ?? null,
            parentRunId: null,
            steps: finished.steps,
            usage: finished.usage,
            costUsd: finished.costUsd,
            output: null,
            error: null,
            createdAt: acceptedAt,
            updatedAt: at,
            finishedAt: at,
          })),
      status: finished.status,
      output: finished.output ?? null,
      error: finished.error ? errorView(finished.error) : null,
      usage: usageView(finished.usage),
      cost_usd: finished.costUsd,
      steps: finished.steps,
      ...(run.duplicate ? { duplicate: true as const } : {}),
    };
  });

  app.get("/v1/runs", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const query = parseBody(ListRunsQuery, request.query);
    const result = await deps.bus.request(Endpoints.runList, {
      meta: metaFor(key.tenant),
      limit: query.limit,
      ...(query.thread_id ? { threadId: query.thread_id } : {}),
      ...(query.status ? { status: query.status } : {}),
      ...(query.agent ? { agent: query.agent } : {}),
      ...(query.cursor ? { cursor: query.cursor } : {}),
    });
    return { object: "list", data: result.runs.map(runView), next_cursor: result.nextCursor ?? null };
  });

  app.get("/v1/runs/:id", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const runId = idParam(request.params);
    const result = await deps.bus.request(Endpoints.runGet, { meta: metaFor(key.tenant), runId });
    if (!result.run) throw new RuntimeError("not_found", `no run ${runId}`, { retryable: false });
    return runView(result.run);
  });

  app.post("/v1/runs/:id/cancel", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const runId = idParam(request.params);
    const cancel = await deps.bus.request(Endpoints.runCancel, {
      meta: metaFor(key.tenant),
      runId,
      reason: "cancelled through the API",
    });
    // the run as it is after the cancel (its row is there: the cancel found it)
    const after = await deps.bus.request(Endpoints.runGet, { meta: metaFor(key.tenant), runId });
    if (!after.run) throw new RuntimeError("not_found", `no run ${runId}`, { retryable: false });
    return cancelledView(after.run, cancel);
  });

  // SSE of a run's events; `id:` is the RUN_EVENTS sequence, so Last-Event-ID resumes exactly
  app.get("/v1/runs/:id/events", async (request, reply) => {
    const key = await deps.authenticate(request, "runs");
    const runId = idParam(request.params);
    const found = await findRun(deps, key.tenant, runId);
    if (!found.run) throw new RuntimeError("not_found", `no run ${runId}`, { retryable: false });
    return streamRunEvents(deps, reply, {
      runId,
      after: lastEventIdOf(request.headers, request.query),
      run: found.run,
    });
  });

  app.get("/v1/threads/:id/messages", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const threadId = idParam(request.params);
    const query = parseBody(ThreadMessagesQuery, request.query);
    const result = await deps.bus.request(Endpoints.memoryMessages, {
      meta: metaFor(key.tenant),
      threadId,
      limit: query.limit,
      ...(query.before ? { before: query.before } : {}),
    });
    if (!result.found) throw new RuntimeError("not_found", `no thread ${threadId}`, { retryable: false });
    return { object: "list", thread_id: threadId, data: result.messages.map(threadMessageView) };
  });
}
