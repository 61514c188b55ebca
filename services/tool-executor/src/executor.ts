import { createHash, randomUUID } from "node:crypto";
import { type Bus, RunCancellation } from "@agent-runtime/bus";
import {
  formatZodError,
  parseToolArguments,
  priorityOf,
  type RequestMeta,
  RuntimeError,
  Subjects,
  staleAfterMs,
  type ToolCallStatus,
  type ToolDescriptor,
  ToolExecReply,
  ToolUsageRecord,
  toolExecEndpoint,
} from "@agent-runtime/contracts";
import { JsonCache, type Redis, WindowLimiter } from "@agent-runtime/stores";
import type { Logger, Metrics } from "@agent-runtime/telemetry";
import type { ToolDefinition } from "@agent-runtime/tools";
import type { Failpoint } from "./failpoints.js";
import { infrastructureFailure, ToolInfrastructureError } from "./infrastructure.js";
import type { IdempotencyStore } from "./records.js";
import { type ReleaseSlot, SLOT_GRACE_MS, type ToolSlots } from "./tool-slots.js";

export interface ExecCall {
  meta: RequestMeta;
  /** The door the run came in by (`chat`, `runs`, `events`), for channel policies. */
  channel?: string;
  /** The caller's agent's tools: a call to any other is refused. */
  offered?: readonly string[];
  callId: string;
  name: string;
  arguments: string | Record<string, unknown>;
  idempotencyKey?: string;
  timeoutMs?: number;
}

/** A tool the executor can run: local (built-in, webhook) or hosted by another service. */
export interface RegisteredTool {
  descriptor: ToolDescriptor;
  definition?: ToolDefinition;
  /** Remote tools: registration expiry (epoch ms). */
  expiresAt?: number;
  maxConcurrency: number;
  cooldownSeconds: number;
  maxResultChars: number;
}

export interface ExecutorDeps {
  bus: Bus;
  redis: Redis;
  redisPrefix: string;
  idempotency: IdempotencyStore;
  /** Per-tool concurrency, by lane. */
  slots: ToolSlots;
  metrics: Metrics;
  logger: Logger;
  lookup: (name: string) => RegisteredTool | undefined;
  /** The tool policies (tenant, agent, channel): whether `name` may run in this context. */
  allows: (name: string, context: { tenant: string; agent?: string; channel?: string }) => boolean;
  /** Fault tests only: the crash points (`FAILPOINTS`); absent, none. */
  failpoint?: (name: Failpoint) => void;
}

const MAX_TIMEOUT_MS = 120_000;

/** The token of a side-effecting call's idempotency claim, while the call holds it. */
interface HeldClaim {
  token?: string;
}

class RemoteFailure {
  constructor(readonly reply: ToolExecReply) {}
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 32);
}

/**
 * Whose cached results a call may share: a personal tool's (results may differ per user, the
 * default) are kept per user, others per tenant only (the key already names the tenant).
 */
function cacheScope(descriptor: ToolDescriptor, meta: RequestMeta): string {
  return descriptor.personal === false ? "shared" : `user-${hashOf(meta.userId ?? "")}`;
}

/** Runs tool calls with validation, timeouts, limits, cooldowns, caching, idempotency and accounting. */
export class ToolExecutor {
  /** The running calls of runs, aborted when their run is cancelled. */
  readonly runs = new RunCancellation();
  private readonly metric;

  /** Results of calls without side effects, shared through Redis, kept in this process too. */
  private readonly results: JsonCache<ToolExecReply>;
  /** A user's use of a tool with a cooldown: a lease of one, held for the cooldown and never given back. */
  private readonly cooldowns: WindowLimiter;

  constructor(private readonly deps: ExecutorDeps) {
    this.results = new JsonCache(deps.redis, { schema: ToolExecReply, localEntries: 10_000 });
    this.cooldowns = new WindowLimiter(deps.redis);
    this.metric = {
      calls: deps.metrics.counter("tool_calls_total", "tool calls", ["tool", "status", "cached"]),
      latency: deps.metrics.histogram("tool_call_seconds", "tool call latency", ["tool"]),
      refused: deps.metrics.counter(
        "tool_calls_refused_total",
        "tool calls refused before running: not the agent's tool, or not allowed by a tool policy",
        ["tool", "reason"],
      ),
      unavailable: deps.metrics.counter(
        "tool_calls_unavailable_total",
        "tool calls answered with a retryable error because the runtime around the tool failed",
        ["tool"],
      ),
    };
  }

  /**
   * Answers one call. What the tool did (its result or its own failure) is the reply the model
   * reads; a call the policies refuse is a `forbidden` reply. A failure of the runtime around the
   * tool (the executor's store, a service a built-in relies on) is thrown as a retryable error
   * instead: its text is never a tool result.
   */
  async exec(call: ExecCall): Promise<ToolExecReply> {
    const started = performance.now();
    const tool = this.deps.lookup(call.name);
    const refused = this.refusal(call, started);
    if (refused) {
      this.metric.refused.inc({ tool: tool ? call.name : "unknown", reason: refused.reason });
      this.account(call, refused.reply, tool);
      return refused.reply;
    }
    if (!tool) {
      const reply = this.reply(call, "not_found", `unknown tool "${call.name}"`, started);
      this.account(call, reply, tool);
      return reply;
    }
    let reply: ToolExecReply;
    try {
      reply = await this.run(tool, call, started);
    } catch (error) {
      const failure = infrastructureFailure(error, call.name);
      this.metric.unavailable.inc({ tool: call.name });
      this.deps.logger.warn(
        {
          tool: call.name,
          runId: call.meta.runId,
          err: error instanceof Error ? error.message : String(error),
        },
        "tool call not run: the runtime around it failed; its caller retries",
      );
      throw failure;
    }
    this.account(call, reply, tool);
    return reply;
  }

  /** A call that must not run here: not one of its agent's tools, or refused by a tool policy. */
  private refusal(
    call: ExecCall,
    started: number,
  ): { reason: "not_offered" | "policy"; reply: ToolExecReply } | undefined {
    const forbidden = (message: string) =>
      this.reply(call, "forbidden", message, started, { code: "forbidden" });
    if (call.offered && !call.offered.includes(call.name)) {
      return {
        reason: "not_offered",
        reply: forbidden(`${call.name} is not one of your tools; use only the tools you were given`),
      };
    }
    const context = {
      tenant: call.meta.tenant,
      ...(call.meta.agent ? { agent: call.meta.agent } : {}),
      ...(call.channel ? { channel: call.channel } : {}),
    };
    if (!this.deps.allows(call.name, context)) {
      return {
        reason: "policy",
        reply: forbidden(`${call.name} is not allowed here by policy; answer without it`),
      };
    }
    return undefined;
  }

  private async run(tool: RegisteredTool, call: ExecCall, started: number): Promise<ToolExecReply> {
    const descriptor = tool.descriptor;
    const read = parseToolArguments(call.arguments);
    if (!read.ok)
      return this.reply(
        call,
        "invalid_arguments",
        `invalid arguments: ${read.reason}; send a JSON object`,
        started,
      );
    let args = read.value;
    if (tool.definition) {
      const parsed = tool.definition.input.safeParse(args);
      if (!parsed.success) {
        return this.reply(
          call,
          "invalid_arguments",
          `invalid arguments: ${formatZodError(parsed.error)}`,
          started,
        );
      }
      args = parsed.data;
    } else if (typeof args !== "object" || args === null || Array.isArray(args)) {
      return this.reply(call, "invalid_arguments", "invalid arguments: expected a JSON object", started);
    }

    const tenant = call.meta.tenant;
    const cacheKey =
      !descriptor.sideEffects && (descriptor.cacheTtlSeconds ?? 0) > 0
        ? `${this.deps.redisPrefix}tcache:${tenant}:${cacheScope(descriptor, call.meta)}:${descriptor.name}:${hashOf(args)}`
        : undefined;
    if (cacheKey) {
      const hit = await this.results.get(cacheKey);
      if (hit)
        return {
          ...hit,
          callId: call.callId,
          cached: true,
          latencyMs: performance.now() - started,
          costUsd: 0,
        };
    }

    // the slot first, then the claim: between a side-effecting call's claim and its act nothing
    // waits (no Redis round trip, no queue), so an executor that stops in between is a rare instant
    // rather than every call caught in a slow slot take (Redis away), whose claim would go stale
    // and leave the call's outcome unknown
    const slot = await this.takeSlot(tool, call, started);
    if (!("release" in slot)) return slot.answered;
    /** This call's claim of its idempotency key, while it holds one. */
    const held: HeldClaim = {};
    let reply: ToolExecReply;
    try {
      if (descriptor.sideEffects && call.idempotencyKey) {
        const answered = await this.claim(descriptor, call, started, held);
        if (answered) return answered;
        this.deps.failpoint?.("after-claim");
      }
      const cooledDown = await this.cooldown(tool, call, started);
      if (cooledDown) {
        await this.letGo(call, held);
        return cooledDown;
      }
      reply = await this.invoke(tool, call, args, started);
      // recorded before the slot is given back, so a call waiting for it with the same key finds it done
      if (held.token !== undefined) {
        if (reply.status === "ok" || reply.status === "invalid_output") {
          held.token = undefined;
          await this.recordDone(call, reply);
        } else await this.letGo(call, held);
      }
    } catch (error) {
      // the runtime around the tool failed before it acted: a retry may run it
      await this.letGo(call, held);
      throw error;
    } finally {
      await slot.release();
    }
    if (cacheKey && reply.status === "ok")
      await this.results.set(cacheKey, reply, descriptor.cacheTtlSeconds ?? 0);
    return reply;
  }

  /** The `cooldown` reply when the user used a tool with a cooldown moments ago; else the use is counted. */
  private async cooldown(
    tool: RegisteredTool,
    call: ExecCall,
    started: number,
  ): Promise<ToolExecReply | undefined> {
    if (tool.cooldownSeconds <= 0 || !call.meta.userId) return undefined;
    const name = tool.descriptor.name;
    const used = await this.cooldowns.take({
      leases: [
        { key: `${this.deps.redisPrefix}tcool:${call.meta.tenant}:${name}:${call.meta.userId}`, limit: 1 },
      ],
      leaseMs: tool.cooldownSeconds * 1000,
    });
    if (used.taken) return undefined;
    return this.reply(
      call,
      "cooldown",
      `${name} was used moments ago; it can be used again within ${tool.cooldownSeconds} seconds. Use the earlier result.`,
      started,
    );
  }

  /**
   * Records that a side-effecting call acted. The effect has happened, so its reply goes back at
   * once whatever the store says: a record that cannot be written now (store away) is written in
   * the background until the store answers, and a retry of the call meanwhile waits for it.
   * Failing the call instead would make its caller retry it, and the retry act again once the
   * claim expires; holding the reply would spend its run's time on the store.
   */
  private async recordDone(call: ExecCall, reply: ToolExecReply): Promise<void> {
    const stored = await this.deps.idempotency.completeSoon(call.meta.tenant, call.idempotencyKey!, reply);
    if (!stored)
      this.deps.logger.warn(
        { tool: call.name, idempotencyKey: call.idempotencyKey },
        "a side effect ran but its record could not be stored yet; its reply goes back, the record is written once the store answers",
      );
  }

  /**
   * Claims a side-effecting call's idempotency key (held in `held` once claimed); a reply when an
   * earlier call answers instead. A claim that fails is let go by the store itself: it may have
   * been stored without a word back.
   */
  private async claim(
    descriptor: ToolDescriptor,
    call: ExecCall,
    started: number,
    held: HeldClaim,
  ): Promise<ToolExecReply | undefined> {
    const token = randomUUID();
    const claim = await this.deps.idempotency.claim(
      call.meta.tenant,
      call.idempotencyKey!,
      descriptor.name,
      staleAfterMs(descriptor),
      token,
      descriptor.idempotentByKey === true,
    );
    if (claim.kind === "claimed") {
      held.token = token;
      if (claim.resent)
        this.deps.logger.warn(
          { tool: call.name, idempotencyKey: call.idempotencyKey },
          "sending again a call whose executor stopped while holding it: its receiver applies each key once",
        );
    }
    if (claim.kind === "done")
      return {
        ...claim.reply,
        callId: call.callId,
        replayed: true,
        latencyMs: performance.now() - started,
      };
    if (claim.kind === "unknown") {
      // never made again: the executor that held it may have acted before it stopped
      return this.reply(
        call,
        "error",
        `the outcome of this call (${call.idempotencyKey}) is unknown: the executor running it stopped, perhaps after it acted; it is not made again`,
        started,
        { code: "upstream" },
      );
    }
    if (claim.kind === "running") {
      return this.reply(
        call,
        "error",
        `this call (${call.idempotencyKey}) is already running; try again shortly`,
        started,
        {
          code: "conflict",
        },
      );
    }
    return undefined;
  }

  /**
   * A concurrency slot in the call's lane, or the reply when there is none (`overloaded`).
   * Interactive calls take one at once or are refused. A batch call may wait for one as long as
   * it would still get its whole timeout before its deadline. No idempotency key is claimed while
   * a call waits: it claims once it holds its slot, so an earlier or concurrent call with its key
   * answers instead.
   */
  private async takeSlot(
    tool: RegisteredTool,
    call: ExecCall,
    started: number,
  ): Promise<{ release: ReleaseSlot } | { answered: ToolExecReply }> {
    const name = tool.descriptor.name;
    const priority = priorityOf(call.meta);
    const busy = () =>
      this.reply(
        call,
        "overloaded",
        `${name} is busy (${tool.maxConcurrency} calls running); try again`,
        started,
        {
          code: "overloaded",
        },
      );
    // a slot is held for the call's time limit at most: one never given back (its executor crashed) frees itself
    const holdMs = this.timeoutOf(tool.descriptor, call) + SLOT_GRACE_MS;
    const free = await this.deps.slots.take(name, tool.maxConcurrency, priority, 0, holdMs);
    if (free) return { release: free };
    const waitUntil = call.meta.deadline - this.timeoutOf(tool.descriptor, call);
    if (priority === "interactive" || waitUntil <= Date.now()) return { answered: busy() };
    const release = await this.deps.slots.take(name, tool.maxConcurrency, "batch", waitUntil, holdMs);
    return release ? { release } : { answered: busy() };
  }

  private timeoutOf(descriptor: ToolDescriptor, call: ExecCall): number {
    return Math.min(call.timeoutMs ?? descriptor.timeoutMs, descriptor.timeoutMs, MAX_TIMEOUT_MS);
  }

  private async invoke(
    tool: RegisteredTool,
    call: ExecCall,
    args: unknown,
    started: number,
  ): Promise<ToolExecReply> {
    const descriptor = tool.descriptor;
    const timeoutMs = Math.min(
      this.timeoutOf(descriptor, call),
      Math.max(1, call.meta.deadline - Date.now()),
    );
    const controller = new AbortController();
    const runId = call.meta.runId;
    const done = runId ? this.runs.register(runId, controller) : undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new RuntimeError("timeout", `${descriptor.name} timed out`));
        resolve("timeout");
      }, timeoutMs);
    });
    const work = (async (): Promise<unknown> => {
      if (tool.definition) {
        return tool.definition.handler(args, {
          tenant: call.meta.tenant,
          ...(call.meta.userId ? { userId: call.meta.userId } : {}),
          ...(call.meta.agent ? { agent: call.meta.agent } : {}),
          ...(call.meta.runId ? { runId: call.meta.runId } : {}),
          callId: call.callId,
          ...(call.idempotencyKey ? { idempotencyKey: call.idempotencyKey } : {}),
          signal: controller.signal,
          deadline: Date.now() + timeoutMs,
        });
      }
      const remote = await this.deps.bus.request(
        toolExecEndpoint(descriptor.name),
        {
          meta: { ...call.meta, deadline: Date.now() + timeoutMs },
          callId: call.callId,
          ...(call.idempotencyKey ? { idempotencyKey: call.idempotencyKey } : {}),
          arguments: args as Record<string, unknown>,
        },
        { subject: Subjects.toolRemote(descriptor.name), timeoutMs },
      );
      // a hosted tool that rejected its arguments or its own result says so in its status
      if (remote.status !== "ok") return new RemoteFailure(remote);
      return remote.output ?? remote.content;
    })();
    try {
      const outcome = await Promise.race([work, timeout]);
      if (outcome === "timeout") {
        work.catch(() => undefined);
        return this.reply(
          call,
          "timeout",
          `${descriptor.name} did not finish within ${timeoutMs} ms`,
          started,
          { code: "timeout" },
        );
      }
      if (outcome instanceof RemoteFailure) {
        return this.reply(call, outcome.reply.status, outcome.reply.content.replace(/^error: /, ""), started);
      }
      let output = outcome;
      if (tool.definition?.output) {
        const checked = tool.definition.output.safeParse(output);
        if (!checked.success) {
          return this.reply(
            call,
            "invalid_output",
            `${descriptor.name} returned an invalid result: ${formatZodError(checked.error)}`,
            started,
          );
        }
        output = checked.data;
      }
      const text = typeof output === "string" ? output : JSON.stringify(output);
      const truncated = text.length > tool.maxResultChars;
      return {
        callId: call.callId,
        name: descriptor.name,
        status: "ok",
        output: truncated ? undefined : output,
        content: truncated
          ? `${text.slice(0, tool.maxResultChars)}… [truncated ${text.length - tool.maxResultChars} characters]`
          : text,
        cached: false,
        replayed: false,
        truncated,
        latencyMs: performance.now() - started,
        costUsd: descriptor.costUsd ?? 0,
      };
    } catch (error) {
      if (error instanceof ToolInfrastructureError) throw error;
      if (error instanceof RuntimeError && error.code === "validation") {
        return this.reply(call, "invalid_arguments", error.message, started);
      }
      return this.failure(call, "error", error, started);
    } finally {
      clearTimeout(timer);
      done?.();
    }
  }

  /** Gives back the call's claim, if it holds one: it has not acted, a retry may run it. */
  private async letGo(call: ExecCall, held: HeldClaim): Promise<void> {
    const token = held.token;
    if (token === undefined) return;
    held.token = undefined;
    await this.deps.idempotency.letGo(call.meta.tenant, call.idempotencyKey!, token);
  }

  /** Batch calls of `tool` waiting for a concurrency slot in this replica. */
  queued(tool: string): number {
    return this.deps.slots.waiting(tool);
  }

  /** Shutting down: batch calls waiting for a slot give up (`overloaded`), so a queue does not hold the drain. */
  stopWaiting(): void {
    this.deps.slots.stopWaiting();
  }

  private failure(call: ExecCall, status: ToolCallStatus, error: unknown, started: number): ToolExecReply {
    const message = error instanceof Error ? error.message : String(error);
    if (!(error instanceof RuntimeError))
      this.deps.logger.warn({ tool: call.name, err: message }, "tool failed");
    return this.reply(call, status, `${call.name} failed: ${message.slice(0, 500)}`, started, {
      code: error instanceof RuntimeError ? error.code : "internal",
    });
  }

  private reply(
    call: ExecCall,
    status: ToolCallStatus,
    content: string,
    started: number,
    error?: { code: RuntimeError["code"] },
  ): ToolExecReply {
    return {
      callId: call.callId,
      name: call.name,
      status,
      content: status === "ok" ? content : `error: ${content}`,
      ...(status === "ok"
        ? {}
        : {
            error: {
              code: error?.code ?? "validation",
              message: content,
              retryable: status === "timeout" || status === "overloaded",
            },
          }),
      cached: false,
      replayed: false,
      truncated: false,
      latencyMs: performance.now() - started,
      costUsd: 0,
    };
  }

  private account(call: ExecCall, reply: ToolExecReply, tool: RegisteredTool | undefined): void {
    this.metric.calls.inc({
      tool: tool ? call.name : "unknown",
      status: reply.status,
      cached: String(reply.cached),
    });
    this.metric.latency.observe({ tool: tool ? call.name : "unknown" }, reply.latencyMs / 1000);
    const record: ToolUsageRecord = {
      v: 1,
      id: randomUUID(),
      ts: Date.now(),
      tenant: call.meta.tenant,
      ...(call.meta.userId ? { userId: call.meta.userId } : {}),
      ...(call.meta.runId ? { runId: call.meta.runId } : {}),
      ...(call.meta.agent ? { agent: call.meta.agent } : {}),
      tool: call.name,
      callId: call.callId,
      status: reply.status,
      latencyMs: reply.latencyMs,
      cached: reply.cached,
      replayed: reply.replayed,
      costUsd: reply.costUsd,
    };
    this.deps.bus
      .publishDurable(Subjects.usageTool, ToolUsageRecord, record, { msgId: record.id })
      .catch((error: unknown) =>
        this.deps.logger.error({ err: error, usage: record }, "tool usage record not stored"),
      );
  }
}
