/**
 * The ledger: where a turn's time and work go. The five services run as
 * processes against a nats-server, a redis-server and a Postgres database of
 * the benchmark's own, with the fake model at zero latency. For a plain turn,
 * a tool turn (one calculator step) and a streamed turn it measures:
 *
 * - added latency p50/p99 over calling the fake provider directly with the
 *   `openai` client (direct and stack calls interleaved; for a streamed turn,
 *   time to the first token),
 * - turns/s at 32 concurrent clients, with errors,
 * - CPU ms per turn per process (/proc/PID/stat), Postgres transactions and
 *   rows per turn (pg_stat_database), NATS messages and bytes per turn
 *   (/varz), Redis commands per turn (INFO commandstats),
 * - and, with span export switched on, the spans of one plain and one tool
 *   turn.
 *
 * Prints a table and writes test/bench/results/ledger.json (the run before is
 * kept as ledger.previous.json; ledger-baseline.json, when present, is the
 * reference the table is compared with).
 *
 * Env: LEDGER_SAMPLES (interleaved pairs per kind, 300), LEDGER_TURNS (turns
 * per kind at 32 clients, 1500), LEDGER_RUNTIME (tsx | compiled; default: compiled
 * when a fresh build exists), LEDGER_SERVICES_ROOT (run the services of another
 * checkout, see ledger-stack.ts), LEDGER_NODE_ARGS (extra node flags for the services, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof").
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startFakeOpenAI } from "@agent-runtime/testkit";
import { Redis } from "ioredis";
import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import pg from "pg";
import { DATABASE_URL, isolatedEnv, newIsolation } from "../support/isolation.js";
import { freePort } from "../support/processes.js";
import {
  type Classify,
  CpuSampler,
  type DatabaseCounters,
  difference,
  type GroupCpu,
  machineBusyMs,
  type NatsCounters,
  readNatsCounters,
  readRedisCommands,
  redisCommandsBetween,
  settledDatabaseCounters,
  waitForQuiet,
} from "./ledger-probes.js";
import { printHops, startSpanCollector, type TurnHops, turnHops } from "./ledger-spans.js";
import {
  chooseRuntime,
  createDatabase,
  type Runtime,
  SERVICE_NAMES,
  type ServiceProcess,
  servicesSource,
  startNatsServer,
  startRedisServer,
  startService,
} from "./ledger-stack.js";
import { runConcurrent, summarize, writeResult } from "./stats.js";

const KEY = "sk-bench-ledger-key";
const CONCURRENCY = 32;
const WARM_UP_TURNS = 30;
const TRACED_TURNS = 9;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, places = 2) => Math.round(value * 10 ** places) / 10 ** places;
/** Epoch milliseconds, sub-millisecond (the SDK stamps span starts with Date.now(), whole milliseconds). */
const now = () => performance.timeOrigin + performance.now();

/** CPU groups, in print order; the first ones make up the total. */
const PG_LEDGER = "postgres: this database's backends";
const PG_SERVER = "postgres: server processes";
const PG_OTHER = "postgres: other databases' backends";
const COUNTED_GROUPS = [
  "ingress",
  "orchestrator",
  "model-proxy",
  "tool-executor",
  "memory",
  "nats-server",
  PG_LEDGER,
  PG_SERVER,
  "redis-server",
];
const BENCH_GROUP = "bench process (clients, fake provider)";
const REST_GROUP = "rest of the machine (other load)";

type KindName = "plain" | "tool" | "stream";

/** One way to hold a turn: through the stack, or the same model calls made directly. Both resolve to the measured ms. */
interface TurnKind {
  name: KindName;
  measured: string;
  stack(index: number): Promise<number>;
  direct(index: number): Promise<number>;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** Time to the first chunk carrying content; the stream is read to its end. */
async function timeToFirstToken(open: () => Promise<AsyncIterable<ChatCompletionChunk>>): Promise<number> {
  const started = performance.now();
  let first: number | undefined;
  for await (const chunk of await open()) {
    if (first === undefined && chunk.choices[0]?.delta?.content) first = performance.now() - started;
  }
  if (first === undefined) throw new Error("stream ended without content");
  return first;
}

function turnKinds(stack: OpenAI, direct: OpenAI): TurnKind[] {
  const ask = (content: string) =>
    stack.chat.completions.create({ model: "assistant", messages: [{ role: "user", content }] });
  const askModel = (messages: OpenAI.ChatCompletionMessageParam[]) =>
    direct.chat.completions.create({ model: "fake-fast", messages });
  return [
    {
      name: "plain",
      measured: "whole turn",
      stack: (index) => timed(() => ask(`hello ${index}`)),
      direct: () => timed(() => askModel([{ role: "user", content: "hello" }])),
    },
    {
      name: "tool",
      measured: "whole turn; direct = the same two model calls",
      stack: (index) => timed(() => ask(`calc ${index}`)),
      direct: () =>
        timed(async () => {
          const user = { role: "user" as const, content: "calc" };
          const first = await askModel([user]);
          const call = first.choices[0]?.message.tool_calls?.[0];
          if (!call) throw new Error("the fake provider did not ask for the calculator");
          await askModel([
            user,
            { role: "assistant", content: null, tool_calls: [call] },
            { role: "tool", tool_call_id: call.id, content: "42" },
          ]);
        }),
    },
    {
      name: "stream",
      measured: "time to first token",
      stack: (index) =>
        timeToFirstToken(() =>
          stack.chat.completions.create({
            model: "assistant",
            messages: [{ role: "user", content: `stream ${index}` }],
            stream: true,
          }),
        ),
      direct: () =>
        timeToFirstToken(() =>
          direct.chat.completions.create({
            model: "fake-fast",
            messages: [{ role: "user", content: "stream" }],
            stream: true,
          }),
        ),
    },
  ];
}

/** `samples` pairs of direct and stack calls, alternating which goes first. */
async function interleaved(kind: TurnKind, samples: number) {
  const direct: number[] = [];
  const stack: number[] = [];
  let errors = 0;
  const measure = async (into: number[], call: () => Promise<number>) => {
    try {
      into.push(await call());
    } catch {
      errors++;
    }
  };
  for (let index = 0; index < samples; index++) {
    if (index % 2 === 0) {
      await measure(direct, () => kind.direct(index));
      await measure(stack, () => kind.stack(index));
    } else {
      await measure(stack, () => kind.stack(index));
      await measure(direct, () => kind.direct(index));
    }
  }
  const directSummary = summarize(direct);
  const stackSummary = summarize(stack);
  return {
    measured: kind.measured,
    addedMs: {
      p50: round(stackSummary.p50 - directSummary.p50),
      p99: round(stackSummary.p99 - directSummary.p99),
    },
    directMs: directSummary,
    stackMs: stackSummary,
    errors,
  };
}

interface Probes {
  sampler: CpuSampler;
  stats: pg.Client;
  database: string;
  monitorUrl: string;
  redis: Redis;
  /** Database counters as of the end of the last phase (settled). */
  settled: DatabaseCounters;
}

interface PhaseCounters {
  wallMs: number;
  cpu: Map<string, GroupCpu>;
  database: DatabaseCounters;
  nats: NatsCounters;
  redis: Map<string, number>;
}

/**
 * Runs `work` with every counter read around it. The window closes when NATS
 * has been quiet for a moment (after-work such as usage records is done); the
 * database counters are read once they have settled, and that read opens the
 * next phase.
 */
async function measurePhase<T>(
  probes: Probes,
  work: () => Promise<T>,
): Promise<{ result: T; counters: PhaseCounters }> {
  const natsBefore = await readNatsCounters(probes.monitorUrl);
  const redisBefore = await readRedisCommands(probes.redis);
  const busyBefore = machineBusyMs();
  const benchBefore = process.cpuUsage();
  const started = performance.now();
  probes.sampler.start();
  const result = await work();
  await waitForQuiet(probes.monitorUrl);
  const cpu = probes.sampler.stop();
  const wallMs = performance.now() - started;
  const bench = process.cpuUsage(benchBefore);
  const busyMs = machineBusyMs() - busyBefore;
  const nats = difference(await readNatsCounters(probes.monitorUrl), natsBefore);
  const redis = redisCommandsBetween(redisBefore, await readRedisCommands(probes.redis));
  const settled = await settledDatabaseCounters(probes.stats, probes.database);
  const database = difference(settled, probes.settled);
  probes.settled = settled;

  cpu.set(BENCH_GROUP, { cpuMs: (bench.user + bench.system) / 1000, processes: 1 });
  const accounted = [...cpu.values()].reduce((sum, group) => sum + group.cpuMs, 0);
  cpu.set(REST_GROUP, { cpuMs: Math.max(0, busyMs - accounted), processes: 0 });
  return { result, counters: { wallMs, cpu, database, nats, redis } };
}

/** Counters divided by `units` (turns, or seconds for the idle phase). */
function ledgerOf(counters: PhaseCounters, units: number) {
  const per = (value: number, places = 3) => round(value / units, places);
  const cpuMs: Record<string, number> = {};
  let total = 0;
  for (const group of COUNTED_GROUPS) {
    const value = counters.cpu.get(group)?.cpuMs ?? 0;
    cpuMs[group] = per(value);
    total += value;
  }
  cpuMs.total = per(total);
  const notCounted = Object.fromEntries(
    [PG_OTHER, BENCH_GROUP, REST_GROUP].map((group) => [group, per(counters.cpu.get(group)?.cpuMs ?? 0)]),
  );
  const redisTotal = [...counters.redis.values()].reduce((sum, calls) => sum + calls, 0);
  return {
    cpuMs,
    cpuMsNotInTotal: notCounted,
    postgres: Object.fromEntries(Object.entries(counters.database).map(([key, value]) => [key, per(value)])),
    nats: Object.fromEntries(Object.entries(counters.nats).map(([key, value]) => [key, per(value, 2)])),
    redis: {
      commands: per(redisTotal),
      byCommand: Object.fromEntries(
        [...counters.redis].slice(0, 8).map(([command, calls]) => [command, per(calls)]),
      ),
    },
  };
}

/** Trace turns of one kind one at a time; the hops of the turn with the median client time. */
async function traceTurns(kind: TurnKind, spans: () => Parameters<typeof turnHops>[0], prefix: string) {
  const turns: Array<{ sentMs: number; answeredMs: number }> = [];
  for (let index = 0; index < TRACED_TURNS; index++) {
    const sentMs = now();
    await kind.stack(1000 + index);
    turns.push({ sentMs, answeredMs: now() });
    await sleep(300);
  }
  await sleep(1500); // the exporters' batch delay is 100 ms; leave room
  const windows = turns.map((turn, index) => ({
    ...turn,
    windowEndMs: turns[index + 1]?.sentMs ?? turn.answeredMs + 300,
  }));
  const median = [...windows].sort((a, b) => a.answeredMs - a.sentMs - (b.answeredMs - b.sentMs))[
    Math.floor(windows.length / 2)
  ]!;
  return turnHops(spans(), median, prefix);
}

function printTable(title: string, header: string[], rows: Array<[string, ...Array<number | string>]>) {
  console.log(`\n${title}`);
  const width = Math.max(...rows.map((row) => row[0].length), 10);
  console.log(`  ${"".padEnd(width)} ${header.map((cell) => cell.padStart(10)).join(" ")}`);
  for (const [label, ...cells] of rows) {
    console.log(`  ${label.padEnd(width)} ${cells.map((cell) => String(cell).padStart(10)).join(" ")}`);
  }
}

function readBaseline(): Record<string, unknown> | undefined {
  const path = join(dirname(fileURLToPath(import.meta.url)), "results", "ledger-baseline.json");
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>) : undefined;
}

function valueAt(record: unknown, path: string): unknown {
  return path
    .split(".")
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], record);
}

export async function run() {
  const samples = Number(process.env.LEDGER_SAMPLES ?? 300);
  const turnsPerKind = Number(process.env.LEDGER_TURNS ?? 1500);
  const runtime: Runtime = chooseRuntime();
  const source = servicesSource();
  console.log(
    `services from ${source.root} at ${source.commit}` +
      (source.modifiedFiles.length > 0
        ? ` with ${source.modifiedFiles.length} uncommitted changes in services/ and packages/`
        : ""),
  );
  console.log(
    `services run as ${runtime.kind === "compiled" ? "compiled JavaScript (node dist/main.js)" : "TypeScript through tsx"} (${runtime.reason})`,
  );
  const loadAtStart = loadavg().map((load) => round(load));
  console.log(`machine: ${cpus().length} cores, load average ${loadAtStart.join(" ")}`);

  const fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const wantsTool = body.messages.some(
      (message) => message.role === "user" && String(message.content).includes("calc"),
    );
    const hasResult = body.messages.some((message) => message.role === "tool");
    if (wantsTool && !hasResult)
      return { toolCalls: [{ name: "calculator", arguments: { expression: "6*7" } }] };
    return { content: "ok" };
  });
  const nats = await startNatsServer();
  const redisServer = await startRedisServer();
  const database = await createDatabase();
  const isolation = newIsolation("ledger");
  const port = await freePort();
  const env = isolatedEnv(isolation, {
    NATS_URL: nats.url,
    DATABASE_URL: database.url,
    REDIS_URL: redisServer.url,
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    BOOTSTRAP_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "sk-fake",
    MODEL_FAST: "fake-fast",
    MODEL_STRONG: "fake-strong",
  });
  const services: ServiceProcess[] = [];
  const startAll = async (extra: NodeJS.ProcessEnv = {}) => {
    for (const name of SERVICE_NAMES) services.push(await startService(name, { ...env, ...extra }, runtime));
  };
  const stopAll = async () => {
    while (services.length > 0) await services.pop()!.stop();
  };
  const stats = new pg.Client({ connectionString: DATABASE_URL });
  const redis = new Redis(redisServer.url);
  const collector = await startSpanCollector();
  try {
    await stats.connect();
    await startAll();
    const stackClient = new OpenAI({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      timeout: 60_000,
    });
    const directClient = new OpenAI({ baseURL: fake.url, apiKey: "sk-fake", maxRetries: 0 });
    const kinds = turnKinds(stackClient, directClient);

    console.log(`warming up (${WARM_UP_TURNS} turns of each kind, direct and through the stack)`);
    for (let index = 0; index < WARM_UP_TURNS; index++) {
      for (const kind of kinds) {
        await kind.stack(index);
        await kind.direct(index);
      }
    }

    // and at full concurrency, so connection pools have grown before anything is counted
    for (const kind of kinds) await runConcurrent(3 * CONCURRENCY, CONCURRENCY, (index) => kind.stack(index));

    const latency: Record<string, Awaited<ReturnType<typeof interleaved>>> = {};
    for (const kind of kinds) {
      console.log(`latency: ${samples} interleaved direct/stack pairs of ${kind.name} turns`);
      latency[kind.name] = await interleaved(kind, samples);
    }

    const roles = new Map<number, string>(services.map((service) => [service.pid, service.name]));
    roles.set(nats.pid, "nats-server");
    roles.set(redisServer.pid, "redis-server");
    const classify: Classify = (pid, stat, commandLine) => {
      const role = roles.get(pid) ?? roles.get(stat.ppid);
      if (role) return role;
      if (stat.comm !== "postgres") return undefined;
      const line = commandLine();
      if (new RegExp(`\\b${database.name}\\b`).test(line)) return PG_LEDGER;
      return /\(\d+\)|\[local\]/.test(line) ? PG_OTHER : PG_SERVER;
    };
    console.log("waiting for the database statistics to settle");
    const probes: Probes = {
      sampler: new CpuSampler(classify),
      stats,
      database: database.name,
      monitorUrl: nats.monitorUrl,
      redis,
      settled: await settledDatabaseCounters(stats, database.name),
    };

    console.log("idle: 10 s with no turns");
    const idle = await measurePhase(probes, () => sleep(10_000));
    const idleSeconds = idle.counters.wallMs / 1000;

    const throughput: Record<
      string,
      { turns: number; errors: number; turnsPerSecond: number; latencyMs: { p50: number; p99: number } }
    > = {};
    const perTurn: Record<string, ReturnType<typeof ledgerOf>> = {};
    for (const kind of kinds) {
      console.log(`throughput: ${turnsPerKind} ${kind.name} turns at ${CONCURRENCY} clients`);
      const { result, counters } = await measurePhase(probes, () =>
        runConcurrent(turnsPerKind, CONCURRENCY, (index) => kind.stack(index)),
      );
      const loaded = summarize(result.latencies);
      throughput[kind.name] = {
        turns: turnsPerKind,
        errors: result.errors,
        turnsPerSecond: round((result.latencies.length / result.wallMs) * 1000, 1),
        latencyMs: { p50: loaded.p50, p99: loaded.p99 },
      };
      perTurn[kind.name] = ledgerOf(counters, result.latencies.length + result.errors);
    }

    console.log("spans: restarting the services with span export to a collector in this process");
    await stopAll();
    await startAll({
      OTEL_SDK_DISABLED: "false",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    for (let index = 0; index < WARM_UP_TURNS; index++) {
      await kinds[0]!.stack(index);
      await kinds[1]!.stack(index);
    }
    const hops: Record<string, TurnHops> = {};
    for (const kind of kinds.slice(0, 2)) {
      hops[kind.name] = await traceTurns(kind, () => collector.spans, isolation.natsPrefix);
    }

    const names = kinds.map((kind) => kind.name);
    const cell = (kind: string, path: string) =>
      valueAt({ latency, throughput, perTurn }, path.replace("*", kind)) as number;
    const row = (label: string, path: string): [string, ...number[]] => [
      label,
      ...names.map((kind) => cell(kind, path)),
    ];
    printTable(
      `ledger: ${runtime.kind} services; ${samples} interleaved pairs; ${turnsPerKind} turns per kind at ${CONCURRENCY} clients`,
      names,
      [
        row("added p50 ms (stream: to first token)", "latency.*.addedMs.p50"),
        row("added p99 ms", "latency.*.addedMs.p99"),
        row("direct p50 ms", "latency.*.directMs.p50"),
        row("errors in the latency pairs", "latency.*.errors"),
        row("turns/s at 32 clients", "throughput.*.turnsPerSecond"),
        row("errors at 32 clients", "throughput.*.errors"),
        ...COUNTED_GROUPS.map((group) => row(`CPU ms/turn ${group}`, `perTurn.*.cpuMs.${group}`)),
        row("CPU ms/turn total", "perTurn.*.cpuMs.total"),
        row("  not in total: other databases", `perTurn.*.cpuMsNotInTotal.${PG_OTHER}`),
        row("  not in total: bench process", `perTurn.*.cpuMsNotInTotal.${BENCH_GROUP}`),
        row("  not in total: rest of machine", `perTurn.*.cpuMsNotInTotal.${REST_GROUP}`),
        row("postgres transactions/turn", "perTurn.*.postgres.transactions"),
        row("postgres rows returned/turn", "perTurn.*.postgres.rowsReturned"),
        row("postgres rows fetched/turn", "perTurn.*.postgres.rowsFetched"),
        row("postgres rows inserted/turn", "perTurn.*.postgres.rowsInserted"),
        row("postgres rows updated/turn", "perTurn.*.postgres.rowsUpdated"),
        row("postgres rows deleted/turn", "perTurn.*.postgres.rowsDeleted"),
        row("nats messages in/turn", "perTurn.*.nats.messagesIn"),
        row("nats messages out/turn", "perTurn.*.nats.messagesOut"),
        row("nats bytes in/turn", "perTurn.*.nats.bytesIn"),
        row("nats bytes out/turn", "perTurn.*.nats.bytesOut"),
        row("nats JetStream API calls/turn", "perTurn.*.nats.jetStreamApiCalls"),
        row("redis commands/turn", "perTurn.*.redis.commands"),
      ],
    );
    for (const kind of names) {
      const top = Object.entries(perTurn[kind]!.redis.byCommand).map(
        ([command, calls]) => `${command} ${calls}`,
      );
      console.log(`  redis top commands/turn, ${kind}: ${top.join(", ") || "none"}`);
    }
    const idleLedger = ledgerOf(idle.counters, idleSeconds);
    console.log(
      `\nidle, per second: CPU ${idleLedger.cpuMs.total} ms (rest of machine ${idleLedger.cpuMsNotInTotal[REST_GROUP]} ms), ` +
        `postgres ${idleLedger.postgres.transactions} transactions, nats ${idleLedger.nats.messagesIn} messages in, ` +
        `redis ${idleLedger.redis.commands} commands`,
    );
    printHops("hops of one plain turn (the median of 9, traced)", hops.plain!);
    printHops("hops of one tool turn (the median of 9, traced)", hops.tool!);

    const notes = [
      "Services, nats-server and redis-server are the benchmark's own; Postgres is the shared server, with a database of the benchmark's own, so pg_stat_database counts only this stack (its reads are made from another database).",
      "CPU: utime+stime from /proc/PID/stat, sampled every 200 ms over each phase; postgres backends are told apart by the database in their process title; a process born inside a phase counts from zero, one that exits keeps its last sample (up to 200 ms of its time can be lost). The total holds the five services, nats-server, this database's backends, the postgres server processes (shared with any other load) and redis-server.",
      "A phase ends when NATS has been quiet for 750 ms, so work after the answer (usage records, memory jobs) is in it; the database counters are read once settled (11 s, then two equal reads 1 s apart).",
      "Added latency is the difference of the percentiles of interleaved direct and stack calls; the tool turn's direct baseline is the same two model calls, the streamed turn's is the direct stream's time to first token.",
      "Measured phases run with OTEL_SDK_DISABLED=true (as the stack bench); spans come from a restart with span export on, so their turns are slightly slower. The SDK stamps a span's start with Date.now() (1 ms resolution) and measures its duration on the monotonic clock, so offsets are good to about 1 ms and durations to microseconds; self time is a span's duration minus what its synchronous children cover; consumer spans of published messages are marked asynchronous.",
    ];
    const figures = {
      runtime: runtime.kind,
      runtimeReason: runtime.reason,
      services: source,
      machine: { cores: cpus().length, loadAverageAtStart: loadAtStart },
      samples,
      turnsPerKind,
      concurrency: CONCURRENCY,
      latency,
      throughput,
      perTurn,
      idle: { per: "second", ...idleLedger },
      hops: Object.fromEntries(
        Object.entries(hops).map(([kind, turn]) => [
          kind,
          {
            unit: "ms",
            client: turn.clientMs,
            beforeFirstSpan: turn.beforeFirstSpanMs,
            afterLastSpan: turn.afterLastSpanMs,
            spans: turn.spans.map(({ offsetMs, durationMs, selfMs, ...rest }) => ({
              ...rest,
              offset: offsetMs,
              duration: durationMs,
              self: selfMs,
            })),
            afterAnswer: turn.afterAnswer.map(({ offsetMs, durationMs, selfMs, ...rest }) => ({
              ...rest,
              offset: offsetMs,
              duration: durationMs,
              self: selfMs,
            })),
          },
        ]),
      ),
      spansRefused: collector.refused,
      notes,
    };

    const baseline = readBaseline();
    if (baseline) {
      console.log(`\ncompared with the baseline of ${String(baseline.at)}:`);
      for (const kind of names) {
        for (const path of [
          "latency.*.addedMs.p50",
          "latency.*.addedMs.p99",
          "throughput.*.turnsPerSecond",
          "perTurn.*.cpuMs.total",
          "perTurn.*.postgres.transactions",
          "perTurn.*.nats.messagesIn",
          "perTurn.*.redis.commands",
        ]) {
          const key = path.replace("*", kind);
          console.log(`  ${key}: ${String(valueAt(baseline, key))} -> ${String(valueAt(figures, key))}`);
        }
      }
    }
    const path = writeResult("ledger", figures);
    console.log(`wrote ${path}`);
    return figures;
  } finally {
    await stopAll().catch(() => undefined);
    redis.disconnect();
    await stats.end().catch(() => undefined);
    await collector.close();
    await fake.close();
    await redisServer.stop();
    await nats.stop();
    await database.drop().catch((error: unknown) => console.error(`could not drop ${database.name}:`, error));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
