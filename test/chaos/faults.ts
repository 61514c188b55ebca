/**
 * The faults of the chaos suite, on a schedule: a random replica SIGKILLed every few seconds (and
 * started again), NATS killed and restarted, Redis stopped for a while, Postgres cut (every
 * connection dropped and new ones refused at the TCP proxy in front of it). Infrastructure faults
 * do not overlap, and no replica is killed during one (or for a few seconds after it), so the time
 * to serve again is each fault's own.
 */
import { SERVICES } from "../support/replicas.js";
import type { ChaosStack } from "./chaos-stack.js";

export type FaultKind = "replica-kill" | "nats-restart" | "redis-outage" | "postgres-cut";

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
  postgresCutMs: number;
}): FaultPlan {
  const cycleMs = Math.min(
    options.durationMs,
    Math.max(60_000, options.redisOutageMs + options.postgresCutMs + 60_000),
  );
  const infra: FaultPlan["infra"] = [];
  for (let start = 0; start + cycleMs <= options.durationMs + 1; start += cycleMs) {
    infra.push({ kind: "nats-restart", atMs: start + cycleMs * 0.15, forMs: 0 });
    infra.push({ kind: "redis-outage", atMs: start + cycleMs * 0.3, forMs: options.redisOutageMs });
    infra.push({ kind: "postgres-cut", atMs: start + cycleMs * 0.6, forMs: options.postgresCutMs });
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
  let infraActive = false;
  const restarts: Promise<void>[] = [];

  const infraTask = async () => {
    let previousEnd = 0;
    for (const step of plan.infra) {
      // planned time, but never sooner than `gapMs` after the last infrastructure fault was healed
      await sleep(Math.max(start + step.atMs, previousEnd + plan.gapMs) - Date.now());
      if (Date.now() + step.forMs >= end) {
        log(`fault ${step.kind} skipped: no time left for it`);
        continue;
      }
      infraActive = true;
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
          case "postgres-cut": {
            stack.postgres.down();
            const record: FaultRecord = {
              kind: step.kind,
              target: `Postgres via TCP proxy :${stack.postgres.port} (connections cut, new ones refused for ${step.forMs} ms)`,
              at,
              measureFrom: at,
              measureNote: "from Postgres answering again",
            };
            faults.push(record);
            await sleep(step.forMs);
            stack.postgres.up();
            record.healedAt = Date.now();
            record.measureFrom = record.healedAt;
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
        quietUntil = previousEnd + plan.quietAfterMs;
      }
    }
  };

  const killTask = async () => {
    await sleep(Math.min(3000, plan.killEveryMs));
    while (Date.now() < end) {
      // no kill during an infrastructure fault, shortly before one or for a while after one
      const now = Date.now();
      const infraSoon = plan.infra.some(
        (step) => start + step.atMs - now >= 0 && start + step.atMs - now < plan.quietAfterMs + 2000,
      );
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
