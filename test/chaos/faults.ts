/**
 * The faults of the chaos suite, on a schedule: a random replica SIGKILLed every few seconds (and
 * started again), NATS killed and restarted, Redis stopped for a while, the private Postgres
 * crashed (`pg_ctl stop -m immediate`: no shutdown checkpoint, transactions in flight lost) and
 * started again after a while (crash recovery from the WAL). Infrastructure faults
 * do not overlap. No replica is killed during a NATS or Postgres fault (or for a few seconds
 * around one), so the time to serve again is each fault's own; replicas are killed during a Redis
 * outage, which the stack must serve through.
 */
import { SERVICES } from "../support/replicas.js";
import type { ChaosStack } from "./chaos-stack.js";

export type FaultKind = "replica-kill" | "nats-restart" | "redis-outage" | "postgres-restart";

export interface FaultRecord {
  kind: FaultKind;
  /** The replica (`orchestrator-2 pid 1234`) or the server. */
  target: string;
  /** When the fault began (ms since epoch). */
  at: number;
  /** When it was healed: the replica started again and ready, the server back. */
  healedAt?: number;
  /** Serving again is measured from here: the kill itself, or the end of an infrastructure outage (Redis: its start, as the runtime must not need Redis). */
  measureFrom: number;
  /** Why from there. */
  measureNote: string;
  /** Filled in by the report: ms from `measureFrom` until every kind of request was answered 2xx again. */
  servingAgainMs?: number | null;
  error?: string;
}

export interface FaultPlan {
  durationMs: number;
  killEveryMs: number;
  /** Infrastructure faults, in order: when (ms after the load started) and for how long. */
  infra: Array<{ kind: Exclude<FaultKind, "replica-kill">; atMs: number; forMs: number }>;
  /** No kills for this long after an infrastructure fault was healed. */
  quietAfterMs: number;
  /** At least this long between two infrastructure faults. */
  gapMs: number;
  /** No fault starts in the last part of the load. */
  lastFaultBeforeEndMs: number;
}

/** One cycle of faults per `cycleMs` (the whole run when shorter), repeated for the duration. */
export function planFaults(options: {
  durationMs: number;
  killEveryMs: number;
  redisOutageMs: number;
  /** How long Postgres stays down between the crash and the start. */
  postgresOutageMs: number;
}): FaultPlan {
  const cycleMs = Math.min(
    options.durationMs,
    Math.max(60_000, options.redisOutageMs + options.postgresOutageMs + 60_000),
  );
  const infra: FaultPlan["infra"] = [];
  for (let start = 0; start + cycleMs <= options.durationMs + 1; start += cycleMs) {
    infra.push({ kind: "nats-restart", atMs: start + cycleMs * 0.15, forMs: 0 });
    infra.push({ kind: "redis-outage", atMs: start + cycleMs * 0.3, forMs: options.redisOutageMs });
    infra.push({ kind: "postgres-restart", atMs: start + cycleMs * 0.6, forMs: options.postgresOutageMs });
  }
  return {
    durationMs: options.durationMs,
    killEveryMs: options.killEveryMs,
    infra,
    quietAfterMs: 3000,
    gapMs: 6000,
    lastFaultBeforeEndMs: 10_000,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** A small seeded generator (mulberry32), so a run's choices can be repeated with CHAOS_SEED. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Waits (at most `limitMs`) until the `ship` webhook has a call in flight: one received in the
 * last 60 ms (it answers after 150 ms). Whether one was seen.
 */
async function webhookCallInFlight(stack: ChaosStack, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    const last = stack.hook.calls.at(-1);
    if (last && Date.now() - last.at < 60) return true;
    await sleep(5);
  }
  return false;
}

/** How many crash recoveries a Postgres server log tells of. */
function crashRecoveries(log: string): number {
  return log.match(/not properly shut down; automatic recovery in progress/g)?.length ?? 0;
}

export interface FaultRun {
  faults: FaultRecord[];
  /** Resolves when the schedule is over and every killed replica is up again. */
  done: Promise<void>;
}

export function runFaults(
  stack: ChaosStack,
  plan: FaultPlan,
  random: () => number,
  log: (line: string) => void,
): FaultRun {
  const faults: FaultRecord[] = [];
  const start = Date.now();
  // the last seconds of load have no new fault, so the last one's recovery is seen too
  const end = start + plan.durationMs - plan.lastFaultBeforeEndMs;
  let quietUntil = 0;
  /** A NATS or Postgres fault is going on (kills wait for it; a Redis outage does not stop them). */
  let infraActive = false;
  /** Replicas are killed during a Redis outage too: the stack must serve without Redis, and survive kills meanwhile. */
  const stopsKills = (kind: FaultPlan["infra"][number]["kind"]) => kind !== "redis-outage";
  /** When the next NATS or Postgres fault starts (its planned time, or later when the one before ran late). */
  let nextStopAt = Number.POSITIVE_INFINITY;
  const restarts: Promise<void>[] = [];

  const infraTask = async () => {
    let previousEnd = 0;
    for (const step of plan.infra) {
      // planned time, but never sooner than `gapMs` after the last infrastructure fault was healed
      const startsAt = Math.max(start + step.atMs, previousEnd + plan.gapMs);
      nextStopAt = stopsKills(step.kind)
        ? startsAt
        : Math.max(
            startsAt + step.forMs + plan.gapMs,
            start +
              (plan.infra.find((next) => next.atMs > step.atMs && stopsKills(next.kind))?.atMs ??
                Number.POSITIVE_INFINITY),
          );
      await sleep(startsAt - Date.now());
      if (Date.now() + step.forMs >= end) {
        log(`fault ${step.kind} skipped: no time left for it`);
        continue;
      }
      infraActive = stopsKills(step.kind);
      const at = Date.now();
      try {
        switch (step.kind) {
          case "nats-restart": {
            await stack.nats.stop("SIGKILL");
            await stack.nats.start();
            const healedAt = Date.now();
            faults.push({
              kind: step.kind,
              target: `nats-server ${stack.nats.url} (SIGKILL, started again on the same port and store)`,
              at,
              healedAt,
              measureFrom: healedAt,
              measureNote: "from NATS answering again",
            });
            break;
          }
          case "redis-outage": {
            await stack.redis.stop("SIGKILL");
            const record: FaultRecord = {
              kind: step.kind,
              target: `redis-server ${stack.redis.url} (SIGKILL, down ${step.forMs} ms)`,
              at,
              measureFrom: at,
              measureNote: "from Redis going away (Redis is a cache: the stack must serve without it)",
            };
            faults.push(record);
            await sleep(step.forMs);
            await stack.redis.start();
            record.healedAt = Date.now();
            break;
          }
          case "postgres-restart": {
            // the worst moment: a side-effecting webhook call in flight, its outcome not yet recorded
            const inFlight = await webhookCallInFlight(stack, 3000);
            const crashedAt = Date.now();
            await stack.postgres.crash();
            const record: FaultRecord = {
              kind: step.kind,
              target: `Postgres 127.0.0.1:${stack.postgres.port} (pg_ctl stop -m immediate${inFlight ? " with a webhook call in flight" : ""}, down ${step.forMs} ms, pg_ctl start)`,
              at: crashedAt,
              measureFrom: crashedAt,
              measureNote: "from Postgres answering again (pg_ctl -w start returned, crash recovery done)",
            };
            faults.push(record);
            await sleep(step.forMs - (Date.now() - crashedAt));
            const recoveriesBefore = crashRecoveries(stack.postgres.log());
            const startedAt = Date.now();
            await stack.postgres.start();
            record.healedAt = Date.now();
            record.target += `; pg_ctl start with crash recovery took ${record.healedAt - startedAt} ms`;
            record.measureFrom = record.healedAt;
            // a real crash: the start replayed the WAL
            if (crashRecoveries(stack.postgres.log()) !== recoveriesBefore + 1)
              record.error = "Postgres started again without crash recovery: the stop was not a crash";
            break;
          }
        }
        log(`fault ${step.kind} healed after ${Date.now() - at} ms`);
      } catch (error) {
        faults.push({
          kind: step.kind,
          target: step.kind,
          at,
          measureFrom: Date.now(),
          measureNote: "the fault could not be applied or healed",
          error: String(error),
        });
      } finally {
        infraActive = false;
        previousEnd = Date.now();
        if (stopsKills(step.kind)) quietUntil = previousEnd + plan.quietAfterMs;
      }
    }
  };

  const killTask = async () => {
    await sleep(Math.min(3000, plan.killEveryMs));
    while (Date.now() < end) {
      // no kill during a NATS or Postgres fault, shortly before one or for a while after one
      const now = Date.now();
      // a replica killed now is up again well before the next NATS or Postgres fault begins
      const infraSoon = nextStopAt - now >= 0 && nextStopAt - now < plan.quietAfterMs + 2000;
      if (!infraActive && !infraSoon && now >= quietUntil) {
        // a service keeps at least one replica up: only services with every replica up are candidates
        const candidates = SERVICES.filter((service) =>
          stack.pool.of(service).every((replica) => replica.up),
        );
        if (candidates.length > 0) {
          const service = candidates[Math.floor(random() * candidates.length)]!;
          const replicas = stack.pool.of(service);
          const replica = replicas[Math.floor(random() * replicas.length)]!;
          const pid = replica.pid;
          const at = Date.now();
          await stack.pool.kill(replica);
          const record: FaultRecord = {
            kind: "replica-kill",
            target: `${replica.id} pid ${pid}`,
            at,
            measureFrom: at,
            measureNote: "from the SIGKILL",
          };
          faults.push(record);
          log(`SIGKILL ${replica.id} (pid ${pid})`);
          restarts.push(
            stack.pool.restart(replica).then(
              () => {
                record.healedAt = Date.now();
              },
              (error: unknown) => {
                record.error = `not started again: ${String(error).slice(0, 500)}`;
              },
            ),
          );
        }
      }
      await sleep(plan.killEveryMs);
    }
  };

  const done = Promise.all([infraTask(), killTask()]).then(async () => {
    await Promise.all(restarts);
  });
  return { faults, done };
}
