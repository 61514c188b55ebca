/**
 * The capacity model: per-turn costs from the ledger benchmark (CPU ms of every service and server,
 * Postgres transactions and rows, NATS messages, Redis commands), a turn mix and a model latency
 * mix, and from them pod sizes, per-pod rates and the replicas, NATS nodes, Postgres and Redis a
 * given rate of turns needs. Every assumption that is not a measurement is a named constant here.
 */

export const SERVICES = ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"] as const;
export type Service = (typeof SERVICES)[number];
export const KINDS = ["plain", "tool", "stream"] as const;
export type Kind = (typeof KINDS)[number];

/** The ledger's per-turn figures (test/bench/ledger.ts writes them). */
export interface Ledger {
  name: string;
  at: string;
  runtime: string;
  machine: { cores: number; loadAverageAtStart?: number[] };
  services: { commit: string };
  turnsPerKind: number;
  concurrency: number;
  throughput: Record<Kind, { turnsPerSecond: number }>;
  perTurn: Record<
    Kind,
    {
      cpuMs: Record<string, number>;
      postgres: { transactions: number; rowsInserted: number; rowsUpdated: number; rowsReturned: number };
      nats: { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number };
      redis: { commands: number };
    }
  >;
}

/** Resident memory of each service process, idle and under the cluster suite's load. */
export interface MemorySample {
  source: string;
  runtime: string;
  turnsPerSecond: number;
  idle: Record<string, number>;
  peak: Record<string, number>;
}

/** What share of turns is of each kind. */
export const TURN_MIX: Record<Kind, number> = { plain: 0.6, tool: 0.25, stream: 0.15 };

/** The model latency mix: the share of model calls per tier and their mean latency (whole answer). */
export const MODEL_MIX = [
  { tier: "fast", share: 0.7, meanSeconds: 0.8 },
  { tier: "strong", share: 0.3, meanSeconds: 3.0 },
] as const;
/** Model calls per turn of each kind (a tool turn asks, calls the tool, asks again). */
export const MODEL_CALLS: Record<Kind, number> = { plain: 1, tool: 2, stream: 1 };
/** Mean time a tool call takes (HTTP tools). */
export const TOOL_SECONDS = 0.3;

/** Share of turns that are batch runs (API batch runs and event-triggered runs). */
export const BATCH_SHARE = 0.1;

/**
 * The orchestrator's concurrency as infra/k8s/base/orchestrator.yaml sets it (the service's own
 * defaults, 64 / 4 / 1, suit one small pod: at scale a pod mostly holds turns waiting on the model).
 */
export const ORCHESTRATOR_SETTINGS = {
  INTERACTIVE_CONCURRENCY: 256,
  BATCH_CONCURRENCY: 32,
  BATCH_CONCURRENCY_WHILE_INTERACTIVE: 8,
} as const;

/** Autoscaling targets and pod shape (infra/k8s/base). */
export const HPA_TARGET_UTILIZATION = 0.7;
/** The rate (turns/s) a pod's CPU request is sized for: request = CPU ms per turn × this. */
export const DESIGN_TURNS_PER_POD = 100;
/** A pod's CPU limit is this many times its request (headroom for bursts before the HPA acts). */
export const LIMIT_OVER_REQUEST = 2;
/** Memory request: the measured peak resident size times this, rounded up to 32 MiB. */
export const MEMORY_HEADROOM = 1.5;
/** Memory each turn in flight holds in a service (its messages, prompt and state): bytes through NATS × this. */
export const IN_FLIGHT_BYTES_FACTOR = 8;

/** Servers: how much of a machine's CPU a server may use at the planned peak. */
export const SERVER_TARGET_UTILIZATION = 0.6;
/** Cores of one NATS node, one Postgres primary and its replicas, one Redis shard's machine. */
export const NATS_NODE_CORES = 8;
export const POSTGRES_MAX_CORES = 64;
/**
 * NATS CPU of an R3 stream write relative to R1 (leader plus two followers storing it, the
 * replication traffic): an estimate, not a measurement of this ledger (single server).
 */
export const NATS_R3_FACTOR = 2.5;
/** Stored messages one stream's leader takes per second at the planned peak (file store, R3). */
export const STREAM_LEADER_MSGS_PER_SECOND = 50_000;
/** JetStream messages stored per turn: RUNS 1, THREAD_TURNS 1, USAGE one per model and tool call. */
export const STORED_PER_TURN: Record<Kind, number> = { plain: 3, tool: 5, stream: 3 };
/** Commands one Redis shard (one thread) serves per second at the planned peak. */
export const REDIS_SHARD_OPS = 80_000;
/** Bytes a run and its steps keep in Postgres per turn (row, request JSON, indexes). */
export const POSTGRES_BYTES_PER_ROW = 1200;

export const RATES = [1_000, 10_000, 100_000] as const;

export const mixed = (perKind: (kind: Kind) => number) =>
  KINDS.reduce((sum, kind) => sum + TURN_MIX[kind] * perKind(kind), 0);

/** Mean seconds one model call takes, over the model latency mix. */
export const meanModelSeconds = () => MODEL_MIX.reduce((sum, tier) => sum + tier.share * tier.meanSeconds, 0);

/** Mean seconds a turn of each kind takes end to end (its model calls and tool call). */
export const turnSeconds = (kind: Kind) =>
  MODEL_CALLS[kind] * meanModelSeconds() + (kind === "tool" ? TOOL_SECONDS : 0);

export interface ServiceCost {
  service: Service;
  cpuMs: Record<Kind, number>;
  cpuMsMixed: number;
}

export function serviceCosts(ledger: Ledger): ServiceCost[] {
  return SERVICES.map((service) => {
    const cpuMs = Object.fromEntries(
      KINDS.map((kind) => [kind, ledger.perTurn[kind].cpuMs[service] ?? 0]),
    ) as Record<Kind, number>;
    return { service, cpuMs, cpuMsMixed: mixed((kind) => cpuMs[kind]) };
  });
}

/** CPU ms per turn of the servers, by kind and mixed. */
export function serverCosts(ledger: Ledger) {
  const of = (pick: (cpu: Record<string, number>) => number) => {
    const perKind = Object.fromEntries(
      KINDS.map((kind) => [kind, pick(ledger.perTurn[kind].cpuMs)]),
    ) as Record<Kind, number>;
    return { perKind, mixed: mixed((kind) => perKind[kind]) };
  };
  return {
    nats: of((cpu) => cpu["nats-server"] ?? 0),
    postgres: of(
      (cpu) => (cpu["postgres: this database's backends"] ?? 0) + (cpu["postgres: server processes"] ?? 0),
    ),
    redis: of((cpu) => cpu["redis-server"] ?? 0),
  };
}

export interface PodShape {
  service: Service;
  cpuRequestMilli: number;
  cpuLimitMilli: number;
  memoryRequestMiB: number;
  memoryLimitMiB: number;
  /** Turns/s one pod serves at the HPA's target utilisation of its request. */
  turnsPerPodAtTarget: number;
  /** Turns/s one pod serves with all of its CPU limit. */
  turnsPerPodAtLimit: number;
  /** Memory one turn in flight holds in this service (estimate). */
  inFlightKiB: number;
}

const roundUp = (value: number, step: number) => Math.ceil(value / step) * step;

export function podShapes(ledger: Ledger, memory: MemorySample): PodShape[] {
  const bytesPerTurn = mixed(
    (kind) => ledger.perTurn[kind].nats.bytesIn + ledger.perTurn[kind].nats.bytesOut,
  );
  return serviceCosts(ledger).map(({ service, cpuMsMixed }) => {
    const cpuRequestMilli = Math.max(100, roundUp(cpuMsMixed * DESIGN_TURNS_PER_POD, 50));
    const cpuLimitMilli = cpuRequestMilli * LIMIT_OVER_REQUEST;
    const peak = memory.peak[service] ?? memory.idle[service] ?? 256;
    const memoryRequestMiB = roundUp(peak * MEMORY_HEADROOM, 32);
    return {
      service,
      cpuRequestMilli,
      cpuLimitMilli,
      memoryRequestMiB,
      memoryLimitMiB: memoryRequestMiB * 2,
      turnsPerPodAtTarget: (cpuRequestMilli * HPA_TARGET_UTILIZATION) / cpuMsMixed,
      turnsPerPodAtLimit: cpuLimitMilli / cpuMsMixed,
      inFlightKiB: (bytesPerTurn * IN_FLIGHT_BYTES_FACTOR) / 1024,
    };
  });
}

export interface Plan {
  rate: number;
  inFlightTurns: number;
  pods: Record<Service, { cpu: number; concurrency: number; replicas: number; bound: "cpu" | "concurrency" }>;
  nats: {
    cores: number;
    nodes: number;
    storedPerSecond: number;
    runsPartitions: number;
    messagesPerSecond: number;
  };
  postgres: {
    cores: number;
    clusters: number;
    transactionsPerSecond: number;
    rowsPerSecond: number;
    gbPerDay: number;
  };
  redis: { opsPerSecond: number; shards: number };
}

/** In-flight bound per pod of each service (its own default settings). */
export const IN_FLIGHT_PER_POD: Record<
  Service,
  { bound: number; setting: string; seconds: (kind: Kind) => number }
> = {
  ingress: {
    bound: 10_000,
    setting: "HTTP connections (no bound of its own below the load balancer)",
    seconds: turnSeconds,
  },
  orchestrator: {
    bound: ORCHESTRATOR_SETTINGS.INTERACTIVE_CONCURRENCY,
    setting: `INTERACTIVE_CONCURRENCY=${ORCHESTRATOR_SETTINGS.INTERACTIVE_CONCURRENCY}, BATCH_CONCURRENCY_WHILE_INTERACTIVE=${ORCHESTRATOR_SETTINGS.BATCH_CONCURRENCY_WHILE_INTERACTIVE}`,
    seconds: turnSeconds,
  },
  "model-proxy": {
    bound: 256,
    setting: "MAX_IN_FLIGHT=256",
    seconds: (kind) => MODEL_CALLS[kind] * meanModelSeconds(),
  },
  "tool-executor": {
    bound: 256,
    setting: "per-tool concurrency limits",
    seconds: (kind) => (kind === "tool" ? TOOL_SECONDS : 0.01),
  },
  memory: { bound: 512, setting: "MAX_IN_FLIGHT=512", seconds: () => 0.02 },
};

export function plan(rate: number, ledger: Ledger, shapes: PodShape[]): Plan {
  const costs = serviceCosts(ledger);
  const pods = {} as Plan["pods"];
  for (const shape of shapes) {
    const cost = costs.find((candidate) => candidate.service === shape.service)!;
    const cpu = Math.ceil((rate * cost.cpuMsMixed) / (shape.cpuRequestMilli * HPA_TARGET_UTILIZATION));
    const inFlight = IN_FLIGHT_PER_POD[shape.service];
    // the orchestrator holds interactive and batch runs in separate slots
    const concurrency =
      shape.service === "orchestrator"
        ? Math.ceil(
            (rate * (1 - BATCH_SHARE) * mixed(turnSeconds)) / ORCHESTRATOR_SETTINGS.INTERACTIVE_CONCURRENCY +
              (rate * BATCH_SHARE * mixed(turnSeconds)) /
                ORCHESTRATOR_SETTINGS.BATCH_CONCURRENCY_WHILE_INTERACTIVE,
          )
        : Math.ceil((rate * mixed(inFlight.seconds)) / inFlight.bound);
    pods[shape.service] = {
      cpu,
      concurrency,
      replicas: Math.max(2, cpu, concurrency),
      bound: concurrency > cpu ? "concurrency" : "cpu",
    };
  }
  const servers = serverCosts(ledger);
  const natsCores = (rate * servers.nats.mixed * NATS_R3_FACTOR) / 1000 / SERVER_TARGET_UTILIZATION;
  const storedPerSecond = rate * mixed((kind) => STORED_PER_TURN[kind]);
  const natsNodes = Math.max(3, roundUp(Math.ceil(natsCores / NATS_NODE_CORES), 3));
  const postgresCores = (rate * servers.postgres.mixed) / 1000 / SERVER_TARGET_UTILIZATION;
  const rowsPerSecond = rate * mixed((kind) => ledger.perTurn[kind].postgres.rowsInserted);
  return {
    rate,
    inFlightTurns: rate * mixed(turnSeconds),
    pods,
    nats: {
      cores: natsCores,
      nodes: natsNodes,
      storedPerSecond,
      // RUNS takes one stored message per turn: one stream per partition of tenants
      runsPartitions: Math.max(1, Math.ceil(rate / STREAM_LEADER_MSGS_PER_SECOND)),
      messagesPerSecond:
        rate * mixed((kind) => ledger.perTurn[kind].nats.messagesIn + ledger.perTurn[kind].nats.messagesOut),
    },
    postgres: {
      cores: postgresCores,
      clusters: Math.max(1, Math.ceil(postgresCores / POSTGRES_MAX_CORES)),
      transactionsPerSecond: rate * mixed((kind) => ledger.perTurn[kind].postgres.transactions),
      rowsPerSecond,
      gbPerDay: (rowsPerSecond * 86_400 * POSTGRES_BYTES_PER_ROW) / 1e9,
    },
    redis: (() => {
      const opsPerSecond = rate * mixed((kind) => ledger.perTurn[kind].redis.commands);
      return { opsPerSecond, shards: Math.max(1, Math.ceil(opsPerSecond / REDIS_SHARD_OPS)) };
    })(),
  };
}
