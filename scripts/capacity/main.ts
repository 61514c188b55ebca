/**
 * `pnpm capacity`: the capacity plan from the ledger benchmark. Reads a ledger
 * (test/bench/results/ledger.json when there is one, else the copy kept in docs/capacity/) and the
 * services' resident memory measured by `pnpm test:cluster` (test/cluster/results/latest.json, else
 * the copy in docs/capacity/), keeps copies of both next to the plan, and writes
 *   docs/capacity.md                   the plan: costs per turn, pod sizes, replicas, servers, the day
 *   infra/k8s/base/resources.yaml      CPU and memory requests and limits of every Deployment
 *
 *   pnpm capacity [--ledger <file>] [--memory <file>] [--check]
 *
 * `--check` writes nothing and exits 1 when either output would change.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  DESIGN_TURNS_PER_POD,
  HPA_TARGET_UTILIZATION,
  IN_FLIGHT_PER_POD,
  KINDS,
  type Ledger,
  LIMIT_OVER_REQUEST,
  MEMORY_HEADROOM,
  type MemorySample,
  MODEL_CALLS,
  MODEL_MIX,
  meanModelSeconds,
  mixed,
  NATS_NODE_CORES,
  NATS_R3_FACTOR,
  type Plan,
  POSTGRES_MAX_CORES,
  type PodShape,
  plan,
  podShapes,
  RATES,
  REDIS_SHARD_OPS,
  SERVER_TARGET_UTILIZATION,
  SERVICES,
  STREAM_LEADER_MSGS_PER_SECOND,
  serverCosts,
  serviceCosts,
  TOOL_SECONDS,
  TURN_MIX,
  turnSeconds,
} from "./model.js";
import { type DayResult, DEFAULT_SCENARIO, simulateDay } from "./simulate.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const keptLedger = join(root, "docs/capacity/ledger-input.json");
const keptMemory = join(root, "docs/capacity/memory-input.json");

const { values } = parseArgs({
  options: { ledger: { type: "string" }, memory: { type: "string" }, check: { type: "boolean" } },
});

function pickInput(given: string | undefined, fresh: string, kept: string): string {
  if (given) return given;
  return existsSync(fresh) ? fresh : kept;
}

const ledgerPath = pickInput(values.ledger, join(root, "test/bench/results/ledger.json"), keptLedger);
const memoryPath = pickInput(values.memory, join(root, "test/cluster/results/latest.json"), keptMemory);
const rawLedger = JSON.parse(readFileSync(ledgerPath, "utf8")) as Ledger & Record<string, unknown>;
const ledger: Ledger = {
  name: rawLedger.name,
  at: rawLedger.at,
  runtime: rawLedger.runtime,
  machine: rawLedger.machine,
  services: { commit: rawLedger.services.commit },
  turnsPerKind: rawLedger.turnsPerKind,
  concurrency: rawLedger.concurrency,
  throughput: rawLedger.throughput,
  perTurn: rawLedger.perTurn,
};
const rawMemory = JSON.parse(readFileSync(memoryPath, "utf8")) as
  | MemorySample
  | {
      run: string;
      summary: {
        residentMiB: { idle: Record<string, number>; peak: Record<string, number> };
        load: { turnsPerSecond: number };
      };
    };
const memory: MemorySample =
  "summary" in rawMemory
    ? {
        source: `pnpm test:cluster run ${rawMemory.run}`,
        runtime: "tsx (TypeScript through tsx: some 30-50 MiB above compiled JavaScript)",
        turnsPerSecond: rawMemory.summary.load.turnsPerSecond,
        idle: rawMemory.summary.residentMiB.idle,
        peak: rawMemory.summary.residentMiB.peak,
      }
    : rawMemory;

const shapes = podShapes(ledger, memory);
const plans = RATES.map((rate) => plan(rate, ledger, shapes));
const simulationPeak = 10_000;
const day = simulateDay(
  ledger,
  shapes,
  plans.find((p) => p.rate === simulationPeak)!,
  DEFAULT_SCENARIO(simulationPeak),
);

// --- formatting helpers
const n = (value: number, digits = 0) =>
  value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const row = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
const table = (head: string[], rows: Array<Array<string | number>>) =>
  [row(head), row(head.map(() => "---")), ...rows.map(row)].join("\n");
const pct = (value: number) => `${n(value * 100, value < 0.01 ? 3 : 1)} %`;

function costsSection(): string {
  const costs = serviceCosts(ledger);
  const servers = serverCosts(ledger);
  const cpuRows = [
    ...costs.map((cost) => [
      cost.service,
      ...KINDS.map((kind) => n(cost.cpuMs[kind], 2)),
      `**${n(cost.cpuMsMixed, 2)}**`,
    ]),
    [
      "nats-server (R1)",
      ...KINDS.map((kind) => n(servers.nats.perKind[kind], 2)),
      `**${n(servers.nats.mixed, 2)}**`,
    ],
    [
      "postgres (backends + server)",
      ...KINDS.map((kind) => n(servers.postgres.perKind[kind], 2)),
      `**${n(servers.postgres.mixed, 2)}**`,
    ],
    [
      "redis-server",
      ...KINDS.map((kind) => n(servers.redis.perKind[kind], 2)),
      `**${n(servers.redis.mixed, 2)}**`,
    ],
  ];
  const workRows = KINDS.map((kind) => {
    const turn = ledger.perTurn[kind];
    return [
      kind,
      n(turn.postgres.transactions, 2),
      n(turn.postgres.rowsInserted, 1),
      n(turn.postgres.rowsUpdated, 1),
      n(turn.nats.messagesIn + turn.nats.messagesOut, 1),
      n((turn.nats.bytesIn + turn.nats.bytesOut) / 1024, 1),
      n(turn.redis.commands, 0),
    ];
  });
  const memoryRows = SERVICES.map((service) => {
    const shape = shapes.find((candidate) => candidate.service === service)!;
    return [
      service,
      n(memory.idle[service] ?? 0, 1),
      n(memory.peak[service] ?? 0, 1),
      n(shape.inFlightKiB, 0),
    ];
  });
  return `## What a turn costs

CPU ms per turn (utime + stime of each process over the ledger's phases, divided by the turns), by
kind of turn and mixed (${KINDS.map((kind) => `${kind} ${pct(TURN_MIX[kind])}`).join(", ")}):

${table(["process", ...KINDS, "mixed"], cpuRows)}

Work per turn on the servers:

${table(["kind", "Postgres transactions", "rows inserted", "rows updated", "NATS messages (in + out)", "NATS KiB", "Redis commands"], workRows)}

Memory: resident size of each service process idle and under load (${memory.source}, about
${n(memory.turnsPerSecond, 1)} turns/s on one replica each, ${memory.runtime}); a turn in flight
holds its messages, prompt and state, estimated at ${IN_FLIGHT_BYTES()} × the bytes a turn moves
through NATS:

${table(["service", "RSS idle (MiB)", "RSS under load (MiB)", "per turn in flight (KiB, estimate)"], memoryRows)}
`;
}

const IN_FLIGHT_BYTES = () => "8";

function podSection(): string {
  const rows = shapes.map((shape) => [
    shape.service,
    `${shape.cpuRequestMilli}m / ${shape.cpuLimitMilli}m`,
    `${shape.memoryRequestMiB}Mi / ${shape.memoryLimitMiB}Mi`,
    n(shape.turnsPerPodAtTarget, 0),
    n(shape.turnsPerPodAtLimit, 0),
    IN_FLIGHT_PER_POD[shape.service].setting,
  ]);
  return `## Pods

Each Deployment's CPU request is the mixed CPU per turn × ${DESIGN_TURNS_PER_POD} turns/s (rounded up to 50m),
its limit ${LIMIT_OVER_REQUEST}× the request; the memory request is the peak RSS × ${MEMORY_HEADROOM} (rounded up to
32 Mi), the limit twice that, and Node's heap is capped at 70 % of the limit. These are written to
\`infra/k8s/base/resources.yaml\` by this script. The autoscalers hold the CPU at ${pct(HPA_TARGET_UTILIZATION)} of the request.

${table(["service", "CPU request / limit", "memory request / limit", "turns/s per pod at the HPA target", "turns/s per pod at the CPU limit", "in-flight bound per pod"], rows)}
`;
}

function latencySection(): string {
  return `## Model latency mix

Model calls: ${MODEL_MIX.map((tier) => `${pct(tier.share)} ${tier.tier} tier (mean ${tier.meanSeconds} s)`).join(", ")}:
a mean of ${n(meanModelSeconds(), 2)} s per call. Model calls per turn: ${KINDS.map((kind) => `${kind} ${MODEL_CALLS[kind]}`).join(", ")};
an HTTP tool call takes ${TOOL_SECONDS} s. A turn therefore lasts ${KINDS.map((kind) => `${kind} ${n(turnSeconds(kind), 2)} s`).join(", ")},
${n(mixed(turnSeconds), 2)} s mixed, and by Little's law a rate of R turns/s keeps ${n(mixed(turnSeconds), 2)} × R turns in flight.
The runtime's own CPU is spent in a few milliseconds of that: the layers that hold a turn while the
model answers (orchestrator, model-proxy, ingress's open connections) are bound by in-flight slots
before they are bound by CPU.
`;
}

function planSection(): string {
  const head = ["", ...plans.map((p) => `${n(p.rate)} turns/s`)];
  const serviceRows = SERVICES.map((service) => [
    service,
    ...plans.map((p) => {
      const pods = p.pods[service];
      return `${n(pods.replicas)} (${pods.bound === "cpu" ? `CPU; ${n(pods.concurrency)} by slots` : `slots; ${n(pods.cpu)} by CPU`})`;
    }),
  ]);
  const serverRows: Array<Array<string | number>> = [
    ["turns in flight", ...plans.map((p) => n(p.inFlightTurns))],
    ["NATS: cores (R3)", ...plans.map((p) => n(p.nats.cores, 1))],
    [`NATS: nodes (of ${NATS_NODE_CORES} cores, multiple of 3)`, ...plans.map((p) => n(p.nats.nodes))],
    ["NATS: messages/s", ...plans.map((p) => n(p.nats.messagesPerSecond))],
    ["JetStream: stored messages/s", ...plans.map((p) => n(p.nats.storedPerSecond))],
    ["RUNS partitions (streams)", ...plans.map((p) => n(p.nats.runsPartitions))],
    ["Postgres: cores", ...plans.map((p) => n(p.postgres.cores, 1))],
    [`Postgres: clusters (≤ ${POSTGRES_MAX_CORES} cores each)`, ...plans.map((p) => n(p.postgres.clusters))],
    ["Postgres: transactions/s", ...plans.map((p) => n(p.postgres.transactionsPerSecond))],
    ["Postgres: rows inserted/s", ...plans.map((p) => n(p.postgres.rowsPerSecond))],
    ["Postgres: GB written/day (before retention)", ...plans.map((p) => n(p.postgres.gbPerDay))],
    ["Redis: commands/s", ...plans.map((p) => n(p.redis.opsPerSecond))],
    ["Redis: shards (Redis Cluster)", ...plans.map((p) => n(p.redis.shards))],
  ];
  return `## Replicas and servers

Replicas of each service at the planned rate (in brackets: what binds it, and the other bound):

${table(head, serviceRows)}

Servers (at ${pct(SERVER_TARGET_UTILIZATION)} of their CPU at the planned peak; NATS CPU × ${NATS_R3_FACTOR} for R3 streams, an
estimate; one stream leader takes ${n(STREAM_LEADER_MSGS_PER_SECOND)} stored messages/s; a Redis shard ${n(REDIS_SHARD_OPS)} commands/s):

${table(head, serverRows)}
`;
}

function saturationSection(p1k: Plan, p100k: Plan): string {
  return `## Where each layer saturates first, and how it is split

- **orchestrator** — in-flight slots, not CPU: with INTERACTIVE_CONCURRENCY=64 a pod holds 64 turns
  that mostly wait on the model (${n(p1k.pods.orchestrator.concurrency)} pods by slots vs ${n(p1k.pods.orchestrator.cpu)} by CPU at 1k turns/s).
  Raise INTERACTIVE_CONCURRENCY (the loop is asynchronous; memory per turn in flight is small) before
  adding pods; KEDA scales it on the RUNS consumers' lag (orchestrator-interactive 10 per replica,
  orchestrator-batch 200, orchestrator-events 100) and CPU. Split: the RUNS stream by subject
  partition — \`runs.<priority>.<tenant>\` mapped to N streams (\`RUNS_0..N-1\`, subject transform on
  a tenant hash on NATS ≥ 2.10) so no single stream leader takes every run (${n(p100k.nats.runsPartitions)} at 100k turns/s).
- **model-proxy** — CPU (response parsing, token accounting, streaming) and the providers' own RPM/TPM:
  the provider limits are shared across replicas through Redis, so more pods do not buy more provider
  quota. HPA on CPU.
- **ingress** — CPU (auth, validation, JSON, SSE); holds each client connection for the whole turn
  (${n(mixed(turnSeconds), 1)} s mixed), so file descriptors and the load balancer's connection limits come next. HPA on CPU.
- **tool-executor** — per-tool concurrency limits and the tools themselves; CPU is small. HPA on CPU.
- **memory** — the memory-turns queue (THREAD_TURNS; a read of a thread takes its waiting turns
  directly, so lag costs no correctness) and Postgres; KEDA on memory-turns and memory-jobs lag.
- **NATS** — first the leader of the busiest stream (RUNS, then USAGE): one raft group writes every
  message of a stream. Split streams by subject partition (above) and spread their leaders over the
  nodes; add nodes in threes; at 100k turns/s run several clusters joined as a supercluster, tenants
  pinned to one.
- **Postgres** — the journal's writes (${n(p1k.postgres.transactionsPerSecond)} transactions/s per 1k turns/s) and connections: every
  service connects through PgBouncer in transaction mode (no session state is relied upon:
  docs/postgres.md). runs and run_steps are partitioned by week and retention drops whole weeks; past
  one primary's ${POSTGRES_MAX_CORES} cores, split by tenant: each tenant's runs, threads and memories live in one of
  N Postgres clusters (a tenant → cluster map; nothing joins across tenants).
- **Redis** — limiter and cache keys are per tenant; in Redis Cluster a tenant's limiter keys carry a
  hash tag (\`{tenant}\`) so a Lua script that touches several of them stays on one shard; caches shard
  freely.
`;
}

function daySection(result: DayResult): string {
  const scenario = result.scenario;
  const layerRows = result.layers.map((layer) => [
    layer.service,
    `${layer.replicas.min} → ${layer.replicas.max}`,
    layer.replicas.atPeakHour,
    n(layer.shed),
    pct(layer.shedShare),
    `${n(layer.secondsShedding)} s`,
  ]);
  const queueRows = [
    [
      "RUNS interactive (orchestrator-interactive)",
      n(result.queues.interactive.maxDepth),
      `${n(result.queues.interactive.maxLagSeconds, 1)} s`,
      `${n(result.queues.interactive.secondsOverOneSecond)} s over 1 s`,
      `${n(result.queues.interactive.shedQueueFull)} (429 queue_full)`,
    ],
    [
      "RUNS batch (orchestrator-batch)",
      n(result.queues.batch.maxDepth),
      `${n(result.queues.batch.maxLagSeconds / 60, 1)} min`,
      "KEDA target: 200 waiting per replica",
      `${n(result.queues.batch.shedQueueFull)} (429 queue_full)`,
    ],
    [
      "THREAD_TURNS (memory-turns)",
      n(result.queues.memoryTurns.maxDepth),
      `${n(result.queues.memoryTurns.maxLagSeconds, 1)} s`,
      "",
      "never (a queue)",
    ],
  ];
  const hourRows = result.hours
    .filter((hour) => hour.hour % 2 === 0 || [9, 13, 20, 21].includes(hour.hour))
    .map((hour) => [
      `${String(hour.hour).padStart(2, "0")}:00`,
      n(hour.offered),
      ...SERVICES.map((service) => hour.replicas[service]),
      n(hour.interactiveLagS, 1),
      n(hour.batchDepth),
      n(hour.shed),
    ]);
  const shedOf = (burst: DayResult["burstWindows"][number]) =>
    Object.entries(burst.shedBy)
      .filter(([, count]) => count >= 1)
      .map(([layer, count]) => `${n(count)} ${layer}`)
      .join(", ") || "none";
  const burstRows = result.burstWindows.map((burst) => [
    burst.name,
    SERVICES.map(
      (service) => `${burst.replicasBefore[service] ?? "?"}→${burst.replicasAfter[service] ?? "?"}`,
    ).join(", "),
    `${n(burst.maxInteractiveLagS, 1)} s`,
    shedOf(burst),
  ]);
  const outsideBursts = result.hours
    .filter((hour) => !result.scenario.bursts.some((burst) => Math.floor(burst.atHour) === hour.hour))
    .reduce((sum, hour) => sum + hour.shed, 0);
  const reading = [
    `outside the burst hours ${n(outsideBursts)} turns were shed at the door or a full queue: the diurnal ramp is followed by the autoscalers`,
    ...result.burstWindows.map(
      (burst) =>
        `${burst.name}: shed ${shedOf(burst)}; interactive lag at most ${n(burst.maxInteractiveLagS, 1)} s`,
    ),
    `batch runs wait in JetStream: KEDA holds about ${200} waiting per orchestrator replica, so batch lag stays at minutes (at most ${n(result.queues.batch.maxLagSeconds / 60, 1)} min) while chat keeps its slots`,
  ];
  return `## A day of traffic (simulation)

\`scripts/capacity/simulate.ts\`: a day in 5 s steps at a planned peak of ${n(scenario.peak)} turns/s
(a diurnal curve from 30 % at 02:00 to 100 % at 14:00, ${pct(scenario.batchShare)} batch), with bursts:
${scenario.bursts.map((burst) => `${burst.name} at ${String(Math.floor(burst.atHour)).padStart(2, "0")}:${String(Math.round((burst.atHour % 1) * 60)).padStart(2, "0")}`).join("; ")}.
Autoscaling as in infra/k8s/base (HPA every 15 s, KEDA every 5 s, up by 100 % or 4 pods, down after
5 min by at most 20 %/min, a new pod ready after 30 s, maxima twice the planned replicas). A layer
serves up to its pods' CPU limit and in-flight slots; what ingress cannot take is shed at the door,
an interactive queue past 1,000 is shed with 429, batch waits in JetStream up to 100,000.

Offered ${n(result.turnsOffered)} turns, served ${n(result.turnsServed)} (${pct(result.turnsServed / result.turnsOffered)}).

Per layer:

${table(["layer", "replicas (min → max)", "at the peak hour", "shed", "share of the day", "time shedding"], layerRows)}

Queues:

${table(["queue", "max depth", "max lag", "", "shed"], queueRows)}

Bursts (replicas before → 10 min after, for ${SERVICES.join(", ")}):

${table(["burst", "replicas", "max interactive lag", "shed"], burstRows)}

Through the day (every other hour, and the burst hours):

${table(["hour", "offered turns/s", ...SERVICES, "interactive lag (s)", "batch depth", "shed"], hourRows)}

Reading it (from the figures above):

${reading.map((line) => `- ${line}.`).join("\n")}
`;
}

const document = `# Capacity plan

Generated by \`pnpm capacity\` (scripts/capacity/) from the ledger benchmark — do not edit by hand;
change the model in scripts/capacity/model.ts or re-run the ledger (\`pnpm bench ledger\`) and
\`pnpm test:cluster\` (memory), then \`pnpm capacity\`.

Inputs: the ledger of ${ledger.at} (${ledger.runtime} services, ${ledger.turnsPerKind} turns per kind at
${ledger.concurrency} clients, a ${ledger.machine.cores}-core machine; commit ${ledger.services.commit.slice(0, 7)}), kept as
docs/capacity/ledger-input.json; memory from ${memory.source}, kept as docs/capacity/memory-input.json.
The ledger's machine was shared with other work (load average ${ledger.machine.loadAverageAtStart?.map((v) => n(v, 1)).join(", ") ?? "?"} at start): CPU time per
process is counted per process, so the figures hold, but the turns/s it reached do not say what a
dedicated machine does.

${costsSection()}
${latencySection()}
${podSection()}
${planSection()}
${saturationSection(plans[0]!, plans[2]!)}
${daySection(day)}
## Assumptions that are not measurements

Named in scripts/capacity/model.ts: the turn mix, the model latency mix, the tool call time, the R3
factor of NATS CPU (the ledger runs one server), the stored messages per turn, a stream leader's
rate, a Redis shard's rate, the bytes per Postgres row, the memory per turn in flight. Measure them
on your own traffic and change them there.
`;

function resourcesYaml(pods: PodShape[]): string {
  const header = `# GENERATED by \`pnpm capacity\` (scripts/capacity) from the ledger benchmark: do not edit by hand.
# CPU request = mixed CPU ms per turn x ${DESIGN_TURNS_PER_POD} turns/s; limit ${LIMIT_OVER_REQUEST}x; memory request = peak RSS x ${MEMORY_HEADROOM};
# limit 2x; Node's heap at 70 % of the memory limit. See docs/capacity.md.
`;
  return (
    header +
    pods
      .map(
        (pod) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${pod.service}
spec:
  template:
    spec:
      containers:
        - name: ${pod.service}
          env:
            - { name: NODE_OPTIONS, value: "--max-old-space-size=${Math.floor(pod.memoryLimitMiB * 0.7)}" }
          resources:
            requests: { cpu: ${pod.cpuRequestMilli}m, memory: ${pod.memoryRequestMiB}Mi }
            limits: { cpu: ${pod.cpuLimitMilli}m, memory: ${pod.memoryLimitMiB}Mi }
`,
      )
      .join("---\n")
  );
}

const outputs = new Map<string, string>([
  [join(root, "docs/capacity.md"), document],
  [join(root, "infra/k8s/base/resources.yaml"), resourcesYaml(shapes)],
  [keptLedger, `${JSON.stringify(ledger, null, 2)}\n`],
  [keptMemory, `${JSON.stringify(memory, null, 2)}\n`],
]);
if (values.check) {
  const stale = [...outputs].filter(
    ([path, text]) => !existsSync(path) || readFileSync(path, "utf8") !== text,
  );
  if (stale.length > 0) {
    console.error(
      `out of date: ${stale.map(([path]) => relative(root, path)).join(", ")} (run pnpm capacity)`,
    );
    process.exit(1);
  }
  console.log("capacity plan up to date");
} else {
  for (const [path, text] of outputs) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote ${relative(root, path)}`);
  }
}
