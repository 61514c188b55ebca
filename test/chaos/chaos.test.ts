/**
 * Chaos: two (CHAOS_REPLICAS) replicas of every service on a private NATS, Redis and Postgres
 * schema, under steady load from the official `openai` client (plain turns, tool turns whose
 * webhook counts side effects per idempotency key, streams) and CloudEvents batches, while a
 * random replica is SIGKILLed every few seconds and started again, NATS is killed and restarted,
 * Redis is stopped for a while and Postgres crashes and is started again. Then: 0 hung, 0 lost, 0 duplicated side
 * effects, 0 runs left non-terminal, every client exactly one answer (a 2xx or a typed retryable
 * error), every stream's text the stored output (or a typed error), and the stack serving again
 * within 5 s of each fault.
 *
 * Bounded by default (CHAOS_DURATION_S=60: about two minutes in all); the long form is e.g.
 * `CHAOS_DURATION_S=600 pnpm test:chaos` (Redis down 30 s and Postgres down 10 s per cycle).
 * Figures go to test/chaos/results/ (JSON), the replicas' logs to test/chaos/results/logs-<run>/.
 * Services run compiled (dist/, as in production) when every build is fresh, through tsx otherwise
 * (CHAOS_RUNTIME=compiled|tsx forces one). CHAOS_SERVICES_ROOT runs the services of another checkout (e.g. a clean copy of a commit while
 * the working tree is being edited); CHAOS_KEEP=1 keeps the private Postgres cluster (stopped, its directory printed); CHAOS_SEED repeats
 * the choice of replicas to kill.
 *
 * Postgres is a private cluster (test/support/private-postgres.ts: initdb into a temporary
 * directory, fsync on), and its fault is a real restart: `pg_ctl stop -m immediate` while a
 * side-effecting webhook call is in flight (no shutdown checkpoint, transactions in flight lost),
 * down CHAOS_POSTGRES_OUTAGE_S, then `pg_ctl start` (crash recovery from the WAL). The cluster is
 * stopped and removed on every way out.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshRuntime, type Runtime } from "../support/replicas.js";
import { type ChaosStack, SHIP_STALE_CLAIM_MS, startChaosStack } from "./chaos-stack.js";
import { planFaults, runFaults, seededRandom } from "./faults.js";
import { CLIENT_TIMEOUT_MS, startLoad } from "./load.js";
import { computeFigures, type Figures, logLinesFor } from "./report.js";

const number = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
const DURATION_MS = number("CHAOS_DURATION_S", 60) * 1000;
const LONG = DURATION_MS >= 240_000;
const REPLICAS = number("CHAOS_REPLICAS", 2);
const KILL_EVERY_MS = number("CHAOS_KILL_EVERY_S", 4) * 1000;
const REDIS_OUTAGE_MS = number("CHAOS_REDIS_OUTAGE_S", LONG ? 30 : 8) * 1000;
const POSTGRES_OUTAGE_MS =
  number("CHAOS_POSTGRES_OUTAGE_S", number("CHAOS_POSTGRES_CUT_S", LONG ? 10 : 5)) * 1000;
const SEED = number("CHAOS_SEED", Math.floor(Math.random() * 2 ** 31));
const SETTLE_MS = number("CHAOS_SETTLE_S", 60) * 1000;
const SERVING_AGAIN_LIMIT_MS = 5000;

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");
const runName = `chaos-${new Date().toISOString().replace(/[:.]/g, "-")}`;
const logDir = join(resultsDir, `logs-${runName}`);

const say = (line: string) =>
  process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stack: ChaosStack | undefined;

beforeAll(async () => {
  mkdirSync(logDir, { recursive: true });
  say(
    `private stack: ${REPLICAS} replicas per service, own nats-server, own redis-server, own Postgres cluster ` +
      "(the Postgres fault is a server crash, pg_ctl stop -m immediate, and a restart)",
  );
  const started = Date.now();
  const servicesRoot = process.env.CHAOS_SERVICES_ROOT;
  if (servicesRoot) say(`services from ${servicesRoot} (CHAOS_SERVICES_ROOT)`);
  const forced = process.env.CHAOS_RUNTIME;
  const { runtime, reason }: { runtime: Runtime; reason: string } =
    forced === "tsx" || forced === "compiled"
      ? { runtime: forced, reason: "CHAOS_RUNTIME" }
      : freshRuntime(servicesRoot);
  say(
    `services run ${runtime === "compiled" ? "compiled JavaScript" : "TypeScript through tsx"} (${reason})`,
  );
  stack = await startChaosStack({
    replicas: REPLICAS,
    logDir,
    keepSchema: process.env.CHAOS_KEEP === "1",
    runtime,
    ...(servicesRoot ? { servicesRoot } : {}),
  });
  say(
    `stack up in ${Date.now() - started} ms (NATS ${stack.nats.url}, Redis ${stack.redis.url}, Postgres ${stack.postgres.url}, schema ${stack.schema})`,
  );
}, 240_000);

afterAll(async () => {
  if (stack && process.env.CHAOS_KEEP === "1")
    say(
      `CHAOS_KEEP=1: Postgres cluster kept (stopped) in ${stack.postgres.dir}/data, schema ${stack.schema}; ` +
        `start it with pg_ctl -D ${stack.postgres.dir}/data -o "-p ${stack.postgres.port} -k ${stack.postgres.dir}" start`,
    );
  await stack?.stop();
}, 120_000);

/** Waits until no run is queued or running and every accepted event has a finished run, or the time is up. */
async function settle(db: ChaosStack["db"], acceptedEvents: string[]): Promise<void> {
  const until = Date.now() + SETTLE_MS;
  while (Date.now() < until) {
    const open = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM runs WHERE status IN ('queued', 'running')",
    );
    const missing = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM unnest($1::text[]) AS accepted(id)
         LEFT JOIN event_runs e ON e.event_id = accepted.id
         LEFT JOIN runs r ON r.id = e.run_id
        WHERE r.status IS NULL OR r.status IN ('queued', 'running')`,
      [acceptedEvents],
    );
    if (open.rows[0]!.n === 0 && missing.rows[0]!.n === 0) return;
    await sleep(1000);
  }
  say(`settle: runs still open after ${SETTLE_MS} ms`);
}

function printFigures(figures: Figures, file: string) {
  const r = figures.requests;
  const lines = [
    `requests sent ${r.sent}; answered 2xx ${r.answered2xx}; typed errors ${r.typedRetryable + r.typedNotRetryable} ${JSON.stringify(r.typedErrors)} (not retryable: ${r.typedNotRetryable}); untyped ${r.untypedErrors}`,
    `hung ${r.hung}; connections cut by an ingress kill ${r.cutByIngressKill}; unexplained connection failures ${r.connectionFailuresUnexplained}`,
    `by kind ${JSON.stringify(r.byKind)}`,
    `lost ${figures.lost.length}; duplicated side effects ${figures.duplicatedSideEffects.length} (webhook calls ${figures.sideEffects.calls}, keys ${figures.sideEffects.keys}, orders ${figures.sideEffects.orders}, sent again after a stale claim ${figures.sideEffects.resent})`,
    `runs by status ${JSON.stringify(figures.runsByStatus)}; ended other than completed: ${figures.endedBadly.map((run) => `${run.id} ${run.status} ${JSON.stringify(run.error)}`).join("; ") || "none"}`,
    `runs left non-terminal ${figures.nonTerminalRuns.length}; events accepted ${figures.eventRuns.accepted}, with a run ${figures.eventRuns.withRun}, completed ${figures.eventRuns.completed}`,
    `streams ${figures.streams.total}: ok ${figures.streams.ok}, text = stored output ${figures.streams.matchedStoredOutput}, ended with a typed error ${figures.streams.endedWithTypedError}, mismatched ${figures.streams.mismatched.length}`,
    `clients without one good answer ${figures.notOneGoodAnswer.length}; typed errors for runs that completed ${figures.errorButCompleted}; unexpected replica exits ${figures.unexpectedExits.length}`,
    `time to serve again (every kind of request answered 2xx by one sent after the reference point, net of the kind's median latency ${JSON.stringify(figures.medianLatencyMs)}):`,
    ...figures.faults.map(
      (fault) =>
        `  ${fault.kind.padEnd(13)} ${fault.target.padEnd(40)} ${fault.servingAgainMs === null ? "NEVER" : `${fault.servingAgainMs} ms`} (${fault.measureNote})${fault.error ? ` ERROR ${fault.error}` : ""}`,
    ),
    `figures: ${file}`,
    `logs: ${logDir}`,
  ];
  for (const line of lines) say(line);
}

describe("chaos", () => {
  it(
    "keeps every promise under replica kills, a NATS restart, a Redis outage and a Postgres crash-restart",
    async () => {
      const current = stack!;
      const random = seededRandom(SEED);
      const plan = planFaults({
        durationMs: DURATION_MS,
        killEveryMs: KILL_EVERY_MS,
        redisOutageMs: REDIS_OUTAGE_MS,
        postgresOutageMs: POSTGRES_OUTAGE_MS,
      });
      say(
        `${LONG ? "long" : "bounded"} form: load ${DURATION_MS / 1000} s, a SIGKILL every ${KILL_EVERY_MS / 1000} s, ` +
          `faults ${plan.infra.map((step) => `${step.kind}@${Math.round(step.atMs / 1000)}s${step.forMs ? `/${step.forMs / 1000}s` : ""}`).join(", ")}, seed ${SEED}`,
      );
      const load = startLoad({
        targets: () => {
          const up = current.pool.of("ingress").filter((replica) => replica.up);
          const chosen = up.length > 0 ? up : current.pool.of("ingress");
          return chosen.map((replica) => ({ id: replica.id, url: current.ingressUrls.get(replica.id)! }));
        },
        workers: { plain: 1, tool: 1, stream: 1, event: 1 },
        pauseMs: 250,
        probeEveryMs: 1000,
        maxInFlight: 24,
      });
      const faults = runFaults(current, plan, random, say);
      const progress = setInterval(() => {
        const ok = load.outcomes.filter((outcome) => outcome.result === "ok").length;
        say(`progress: ${load.outcomes.length} answered (${ok} 2xx), ${load.inFlight()} in flight`);
      }, 10_000);
      await sleep(DURATION_MS);
      say(`load stops; waiting for ${load.inFlight()} requests in flight (at most ${CLIENT_TIMEOUT_MS} ms)`);
      await load.stop();
      clearInterval(progress);
      await faults.done;
      const acceptedEvents = load.outcomes
        .filter((outcome) => outcome.kind === "event" && outcome.result === "ok")
        .flatMap((outcome) => outcome.eventIds ?? []);
      await settle(current.db, acceptedEvents);

      const figures = await computeFigures({
        outcomes: load.outcomes,
        faults: faults.faults,
        hookCalls: current.hook.calls,
        staleClaimMs: SHIP_STALE_CLAIM_MS,
        db: current.db,
        exits: current.pool.exits,
        servingAgainLimitMs: SERVING_AGAIN_LIMIT_MS,
      });
      const failureIds = [
        ...figures.lost,
        ...figures.duplicatedSideEffects,
        ...figures.notOneGoodAnswer,
        ...figures.streams.mismatched,
        ...figures.nonTerminalRuns.map((run) => ({ runId: run.id })),
        ...figures.endedBadly.map((run) => ({ runId: run.id })),
      ]
        .map((failure) => failure.runId)
        .filter((id): id is string => id !== undefined)
        .slice(0, 40);
      const logFiles = current.pool.replicas.flatMap((replica) => replica.logFiles);
      const file = join(resultsDir, `${runName}.json`);
      const document = {
        run: runName,
        form: LONG ? "long" : "bounded",
        settings: {
          durationS: DURATION_MS / 1000,
          replicas: REPLICAS,
          killEveryS: KILL_EVERY_MS / 1000,
          redisOutageS: REDIS_OUTAGE_MS / 1000,
          postgresOutageS: POSTGRES_OUTAGE_MS / 1000,
          seed: SEED,
          clientTimeoutMs: CLIENT_TIMEOUT_MS,
          postgresFault:
            "server restart of the suite's private Postgres cluster: pg_ctl stop -m immediate (a crash: no shutdown checkpoint, transactions in flight lost) while a webhook call is in flight, down postgresOutageS, then pg_ctl start (crash recovery)",
        },
        figures,
        logs: logDir,
        logLinesOfFailedRuns: logLinesFor(failureIds, logFiles),
        outcomes: load.outcomes,
        sideEffectCalls: current.hook.calls.map((call) => ({ key: call.key, body: call.body, at: call.at })),
      };
      mkdirSync(resultsDir, { recursive: true });
      writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
      writeFileSync(
        join(resultsDir, "latest.json"),
        `${JSON.stringify({ ...document, outcomes: undefined, sideEffectCalls: undefined }, null, 2)}\n`,
      );
      printFigures(figures, file);

      // the load ran: a run that answered nothing proves nothing
      expect(figures.requests.answered2xx).toBeGreaterThan(20);
      expect(figures.faults.filter((fault) => fault.kind === "replica-kill").length).toBeGreaterThan(0);
      // Known failures in service code as of 622294a (see the chaos report in issue 12), not
      // weakened here: a Postgres outage makes a tool call whose effect happened count as "not
      // run" and its retry repeat the effect (duplicated side effects); an interactive run whose
      // store is away on take-over is told failed but left `running` (non-terminal runs); events
      // dead-lettered after 5 deliveries while Postgres is away never become runs (lost); a NATS
      // restart fails a run in flight as `internal` (not retryable); keep-alives lost while NATS
      // reconnects fail model calls as `unavailable`.
      expect.soft(figures.requests.hung, "hung clients").toBe(0);
      expect.soft(figures.lost, "lost work").toEqual([]);
      expect.soft(figures.duplicatedSideEffects, "duplicated side effects").toEqual([]);
      expect.soft(figures.nonTerminalRuns, "runs left non-terminal").toEqual([]);
      expect.soft(figures.notOneGoodAnswer, "clients without a 2xx or a typed retryable error").toEqual([]);
      expect.soft(figures.streams.mismatched, "streams whose text is not the stored output").toEqual([]);
      expect
        .soft(figures.slowRecoveries, `faults not served again within ${SERVING_AGAIN_LIMIT_MS} ms`)
        .toEqual([]);
      expect.soft(figures.unexpectedExits, "replicas that exited without being killed").toEqual([]);
    },
    DURATION_MS + CLIENT_TIMEOUT_MS + SETTLE_MS + 120_000,
  );
});
