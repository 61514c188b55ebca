/**
 * The figures of a chaos run, from what the clients saw, what the webhook saw and what the runs
 * table holds: requests sent, answered 2xx, typed errors by code, hung, lost, duplicated side
 * effects, runs left non-terminal, streams whose text is not the stored output, and the time to
 * serve again after each fault.
 */
import { readFileSync } from "node:fs";
import type pg from "pg";
import type { ReplicaExit } from "../support/replicas.js";
import type { HookCall } from "../support/side-effect-hook.js";
import type { FaultRecord } from "./faults.js";
import type { Kind, Outcome } from "./load.js";

const KINDS: Kind[] = ["plain", "tool", "stream", "event"];
const TERMINAL = new Set(["completed", "failed", "cancelled", "budget_exceeded"]);

/** One thing that must not happen, with what it is about. */
export interface Failure {
  what: string;
  kind?: Kind;
  seq?: number;
  runId?: string;
  order?: string;
  eventId?: string;
  ingress?: string;
  detail?: string;
}

export interface RunRow {
  id: string;
  status: string;
  agent: string;
  output: { content?: unknown } | null;
  error: unknown;
  attempts: number;
  created_at: Date;
  updated_at: Date;
}

export function textOfContent(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((part) => (part && typeof part === "object" && "text" in part ? String(part.text) : ""))
      .join("");
  return "";
}

function orderOf(call: HookCall): string | undefined {
  try {
    const body = JSON.parse(call.body) as { order?: unknown };
    return typeof body.order === "string" ? body.order : undefined;
  } catch {
    return undefined;
  }
}

export interface Figures {
  requests: {
    sent: number;
    answered2xx: number;
    typedErrors: Record<string, number>;
    typedRetryable: number;
    typedNotRetryable: number;
    untypedErrors: number;
    /** Connections that failed because the ingress replica they were on was SIGKILLed then. */
    cutByIngressKill: number;
    /** Connections that failed with no ingress kill to explain it. */
    connectionFailuresUnexplained: number;
    hung: number;
    byKind: Record<string, { sent: number; ok: number; typedErrors: number; other: number }>;
  };
  lost: Failure[];
  duplicatedSideEffects: Failure[];
  nonTerminalRuns: Array<{ id: string; status: string; agent: string; attempts: number; updatedAt: string }>;
  /** Every run in the runs table, by status. */
  runsByStatus: Record<string, number>;
  /** Runs that ended other than `completed`, with their error. */
  endedBadly: Array<{ id: string; status: string; agent: string; error: unknown }>;
  /** Clients that got neither a 2xx nor a typed retryable error (nor a connection cut by an ingress kill). */
  notOneGoodAnswer: Failure[];
  streams: {
    total: number;
    ok: number;
    matchedStoredOutput: number;
    endedWithTypedError: number;
    mismatched: Failure[];
    internalToolCallChunks: number;
  };
  /**
   * `resent`: calls sent again under a key the webhook had, once their first send's claim went
   * stale (its executor killed between claiming the key and hearing back); the webhook applies a
   * key once, so they are not duplicated effects.
   */
  sideEffects: { calls: number; keys: number; orders: number; resent: number };
  eventRuns: { accepted: number; withRun: number; completed: number };
  /** Typed errors answered for runs that nonetheless completed (a client that retries repeats the run). */
  errorButCompleted: number;
  /** Median latency of 2xx answers per kind (serving-again times are net of it). */
  medianLatencyMs: Record<Kind, number>;
  faults: FaultRecord[];
  slowRecoveries: FaultRecord[];
  unexpectedExits: ReplicaExit[];
}

/** Median latency of the 2xx answers of each kind over the whole run. */
export function medianLatencies(outcomes: Outcome[]): Record<Kind, number> {
  const medians = {} as Record<Kind, number>;
  for (const kind of KINDS) {
    const latencies = outcomes
      .filter((outcome) => outcome.kind === kind && outcome.result === "ok")
      .map((outcome) => outcome.endedAt - outcome.startedAt)
      .sort((a, b) => a - b);
    medians[kind] = latencies[Math.floor(latencies.length / 2)] ?? 0;
  }
  return medians;
}

/**
 * Ms from `from` until the stack served every kind of request again: for each kind, the first
 * request sent after `from` that was answered 2xx, counted until its answer less the kind's median
 * latency (the time any answer takes on this machine, so a slow machine is not a slow recovery),
 * and never less than when it was sent. Null when some kind was never answered 2xx again.
 */
export function servingAgainMs(
  outcomes: Outcome[],
  from: number,
  medians: Record<Kind, number>,
): number | null {
  let worst = 0;
  for (const kind of KINDS) {
    let first: Outcome | undefined;
    for (const outcome of outcomes)
      if (outcome.kind === kind && outcome.result === "ok" && outcome.startedAt >= from)
        if (!first || outcome.endedAt < first.endedAt) first = outcome;
    if (!first) return null;
    worst = Math.max(worst, first.startedAt - from, first.endedAt - medians[kind] - from);
  }
  return worst;
}

export async function computeFigures(input: {
  outcomes: Outcome[];
  faults: FaultRecord[];
  hookCalls: HookCall[];
  /**
   * How old a claim of a key is before another executor takes it over and sends the call again
   * (the webhook honours keys); a repeat of a key sooner than this is a duplicated side effect.
   */
  staleClaimMs: number;
  /** A client or a pool (the chaos suite's survives Postgres crashes). */
  db: pg.Client | pg.Pool;
  exits: ReplicaExit[];
  servingAgainLimitMs: number;
}): Promise<Figures> {
  const { outcomes, faults, db } = input;
  const kills = faults.filter((fault) => fault.kind === "replica-kill");
  const killedIngressAt = (ingress: string, from: number, to: number) =>
    kills.some(
      (fault) => fault.target.startsWith(`${ingress} `) && fault.at >= from - 100 && fault.at <= to + 100,
    );

  const runs = new Map<string, RunRow>();
  for (const row of (
    await db.query<RunRow>(
      "SELECT id, status, agent, output, error, attempts, created_at, updated_at FROM runs",
    )
  ).rows)
    runs.set(row.id, row);
  const eventRuns = new Map<string, string>();
  for (const row of (
    await db.query<{ event_id: string; run_id: string }>("SELECT event_id, run_id FROM event_runs")
  ).rows)
    eventRuns.set(row.event_id, row.run_id);
  const callsByOrder = new Map<string, number>();
  const callsByKey = new Map<string, number>();
  const firstCallOfKey = new Map<string, number>();
  /** Repeats the webhook did not act on, sent once the first send's claim was stale. */
  const resent = new Set<HookCall>();
  for (const call of input.hookCalls) {
    const first = firstCallOfKey.get(call.key);
    if (first === undefined) firstCallOfKey.set(call.key, call.at);
    // the claim was made a little before the first send reached the webhook: a second of slack
    else if (call.repeat && call.at - first >= input.staleClaimMs - 1000) resent.add(call);
    if (call.repeat) continue;
    const order = orderOf(call) ?? "(no order)";
    callsByOrder.set(order, (callsByOrder.get(order) ?? 0) + 1);
  }
  for (const call of input.hookCalls)
    if (!resent.has(call)) callsByKey.set(call.key, (callsByKey.get(call.key) ?? 0) + 1);

  const requests: Figures["requests"] = {
    sent: outcomes.length,
    answered2xx: 0,
    typedErrors: {},
    typedRetryable: 0,
    typedNotRetryable: 0,
    untypedErrors: 0,
    cutByIngressKill: 0,
    connectionFailuresUnexplained: 0,
    hung: 0,
    byKind: {},
  };
  const lost: Failure[] = [];
  const notOneGoodAnswer: Failure[] = [];
  const streams: Figures["streams"] = {
    total: 0,
    ok: 0,
    matchedStoredOutput: 0,
    endedWithTypedError: 0,
    mismatched: [],
    internalToolCallChunks: 0,
  };
  const eventFigures = { accepted: 0, withRun: 0, completed: 0 };
  let errorButCompleted = 0;

  for (const outcome of outcomes) {
    const byKind = requests.byKind[outcome.kind] ?? { sent: 0, ok: 0, typedErrors: 0, other: 0 };
    requests.byKind[outcome.kind] = byKind;
    byKind.sent++;
    const about = {
      kind: outcome.kind,
      seq: outcome.seq,
      ingress: outcome.ingress,
      ...(outcome.runId ? { runId: outcome.runId } : {}),
    };
    const run = outcome.runId ? runs.get(outcome.runId) : undefined;
    switch (outcome.result) {
      case "ok":
        requests.answered2xx++;
        byKind.ok++;
        break;
      case "typed_error":
        byKind.typedErrors++;
        requests.typedErrors[outcome.code!] = (requests.typedErrors[outcome.code!] ?? 0) + 1;
        if (outcome.retryable) requests.typedRetryable++;
        else {
          requests.typedNotRetryable++;
          notOneGoodAnswer.push({
            ...about,
            what: `typed error that is not retryable: ${outcome.status ?? "(in stream)"} ${outcome.code}`,
            detail: outcome.message,
          });
        }
        if (run?.status === "completed") errorButCompleted++;
        break;
      case "untyped_error":
        byKind.other++;
        requests.untypedErrors++;
        notOneGoodAnswer.push({
          ...about,
          what: `untyped error ${outcome.status ?? ""}`.trim(),
          detail: outcome.message,
        });
        break;
      case "connection_cut":
        byKind.other++;
        if (killedIngressAt(outcome.ingress, outcome.startedAt, outcome.endedAt)) requests.cutByIngressKill++;
        else {
          requests.connectionFailuresUnexplained++;
          notOneGoodAnswer.push({
            ...about,
            what: "connection failed with no ingress kill to explain it",
            detail: outcome.message,
          });
        }
        break;
      case "hung":
        byKind.other++;
        requests.hung++;
        notOneGoodAnswer.push({
          ...about,
          what: "hung: no answer within the client timeout",
          detail: outcome.message,
        });
        break;
    }

    if (outcome.kind === "stream") {
      streams.total++;
      streams.internalToolCallChunks += outcome.toolCallChunks ?? 0;
      if (outcome.result === "typed_error") streams.endedWithTypedError++;
      if (outcome.result === "ok") {
        streams.ok++;
        const stored = run?.output ? textOfContent(run.output.content) : undefined;
        if (stored !== undefined && stored === outcome.text) streams.matchedStoredOutput++;
        else
          streams.mismatched.push({
            ...about,
            what: `stream ended with finish_reason "${outcome.finishReason}" but its text is not the stored output`,
            detail: `streamed ${outcome.text?.length ?? 0} chars: ${JSON.stringify(outcome.text?.slice(-80))}; stored (${run?.status ?? "no run row"}) ${stored?.length ?? 0} chars: ${JSON.stringify(stored?.slice(-80))}`,
          });
      }
    }

    if (outcome.result === "ok" && outcome.kind !== "event") {
      if (!outcome.runId) lost.push({ ...about, what: "2xx without an x-run-id" });
      else if (!run) lost.push({ ...about, what: "answered 2xx but the run has no row" });
      else if (run.status !== "completed")
        lost.push({ ...about, what: `answered 2xx but the run is ${run.status}` });
      else if (outcome.kind !== "stream" && textOfContent(run.output?.content) !== outcome.text)
        lost.push({
          ...about,
          what: "the 2xx answer is not the stored output",
          detail: `answered ${JSON.stringify(outcome.text)}; stored ${JSON.stringify(textOfContent(run.output?.content))}`,
        });
      if (outcome.kind === "tool") {
        const order = outcome.orders![0]!;
        if (!callsByOrder.has(order))
          lost.push({ ...about, order, what: "answered 2xx but its shipment never reached the webhook" });
      }
    }

    if (outcome.kind === "event" && outcome.result === "ok") {
      outcome.eventIds!.forEach((eventId, index) => {
        eventFigures.accepted++;
        const order = outcome.orders![index]!;
        const runId = eventRuns.get(eventId);
        const eventRun = runId ? runs.get(runId) : undefined;
        if (runId) eventFigures.withRun++;
        if (!runId)
          lost.push({ ...about, eventId, order, what: "event accepted (202) but no run was started for it" });
        else if (!eventRun)
          lost.push({
            ...about,
            eventId,
            order,
            runId,
            what: "event accepted; its run was claimed but has no row",
          });
        else if (TERMINAL.has(eventRun.status) && eventRun.status !== "completed")
          lost.push({
            ...about,
            eventId,
            order,
            runId,
            what: `event accepted but its run ended ${eventRun.status}`,
            detail: JSON.stringify(eventRun.error)?.slice(0, 400),
          });
        else if (eventRun.status === "completed") {
          eventFigures.completed++;
          if (!callsByOrder.has(order))
            lost.push({
              ...about,
              eventId,
              order,
              runId,
              what: "event run completed but its shipment never reached the webhook",
            });
        }
      });
    }
  }

  const duplicatedSideEffects: Failure[] = [];
  const start = outcomes.reduce(
    (first, outcome) => Math.min(first, outcome.startedAt),
    Number.POSITIVE_INFINITY,
  );
  const callsOf = (match: (call: HookCall) => boolean) =>
    input.hookCalls
      .filter(match)
      .map((call) => `${call.key} at +${call.at - start} ms`)
      .join("; ");
  // the webhook's idempotency key is `<run id>:<step>:<call position>`; a tool-call id (sent for a
  // call made without a key) names the run whose journaled steps hold it
  const runsOfKeys = new Map<string, string>();
  const repeatedKeys = [...callsByKey.keys()].filter((key) => key && (callsByKey.get(key) ?? 0) > 1);
  const repeatedOrders = [...callsByOrder.entries()].filter(([, count]) => count > 1).map(([order]) => order);
  const keysOfOrders = input.hookCalls
    .filter((call) => repeatedOrders.includes(orderOf(call) ?? ""))
    .map((call) => call.key);
  for (const key of new Set([...repeatedKeys, ...keysOfOrders])) {
    const found = await db.query<{ run_id: string }>(
      "SELECT DISTINCT run_id FROM run_steps WHERE assistant::text LIKE $1 LIMIT 1",
      [`%${key.replace(/[%_\\]/g, (character) => `\\${character}`)}%`],
    );
    if (found.rows[0]) runsOfKeys.set(key, found.rows[0].run_id);
  }
  const runOfKey = (key: string) =>
    runsOfKeys.get(key) ?? (/^[^:]+:\d+:\d+$/.test(key) ? key.split(":")[0] : undefined);
  for (const [key, count] of callsByKey)
    if (count > 1)
      duplicatedSideEffects.push({
        what: `idempotency key called ${count} times`,
        ...(runOfKey(key) ? { runId: runOfKey(key)! } : {}),
        detail: callsOf((call) => call.key === key),
      });
  for (const [order, count] of callsByOrder)
    if (count > 1) {
      const keys = input.hookCalls.filter((call) => orderOf(call) === order).map((call) => call.key);
      duplicatedSideEffects.push({
        what: `order shipped ${count} times (runs ${[...new Set(keys.map(runOfKey))].join(", ")})`,
        order,
        ...(runOfKey(keys[0]!) ? { runId: runOfKey(keys[0]!)! } : {}),
        detail: callsOf((call) => orderOf(call) === order),
      });
    }

  const runsByStatus: Record<string, number> = {};
  for (const run of runs.values()) runsByStatus[run.status] = (runsByStatus[run.status] ?? 0) + 1;
  const endedBadly = [...runs.values()]
    .filter((run) => TERMINAL.has(run.status) && run.status !== "completed")
    .map((run) => ({ id: run.id, status: run.status, agent: run.agent, error: run.error }));

  const nonTerminalRuns = [...runs.values()]
    .filter((run) => !TERMINAL.has(run.status))
    .map((run) => ({
      id: run.id,
      status: run.status,
      agent: run.agent,
      attempts: run.attempts,
      updatedAt: run.updated_at.toISOString(),
    }));

  const medians = medianLatencies(outcomes);
  for (const fault of faults) fault.servingAgainMs = servingAgainMs(outcomes, fault.measureFrom, medians);
  const slowRecoveries = faults.filter(
    (fault) =>
      fault.error !== undefined ||
      fault.servingAgainMs === null ||
      fault.servingAgainMs! > input.servingAgainLimitMs,
  );
  const killed = new Set(kills.map((fault) => fault.target.split(" pid ")[1]));
  // a process the pool itself gave up on during start-up (SIGKILLed when not ready in time) is the
  // suite's doing; one that ended on its own, at start-up or later, is not
  const unexpectedExits = input.exits.filter(
    (exit) => !killed.has(String(exit.pid)) && (exit.wasUp || exit.signal !== "SIGKILL"),
  );

  return {
    requests,
    lost,
    duplicatedSideEffects,
    nonTerminalRuns,
    runsByStatus,
    endedBadly,
    notOneGoodAnswer,
    streams,
    sideEffects: {
      calls: input.hookCalls.length,
      keys: callsByKey.size,
      orders: callsByOrder.size,
      resent: resent.size,
    },
    eventRuns: eventFigures,
    errorButCompleted,
    medianLatencyMs: medians,
    faults,
    slowRecoveries,
    unexpectedExits,
  };
}

/** Lines of the replicas' logs that name one of the ids (at most `perId` each). */
export function logLinesFor(ids: string[], logFiles: string[], perId = 8): Record<string, string[]> {
  const found: Record<string, string[]> = {};
  if (ids.length === 0) return found;
  const wanted = new Set(ids);
  for (const file of logFiles) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    const name = file.split("/").at(-1)!;
    for (const line of text.split("\n")) {
      for (const id of wanted) {
        if (!line.includes(id)) continue;
        const lines = found[id] ?? [];
        found[id] = lines;
        if (lines.length < perId) lines.push(`${name}: ${line.slice(0, 600)}`);
      }
    }
  }
  return found;
}
