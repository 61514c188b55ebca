/**
 * A day of traffic through the runtime's layers under the autoscaling rules of infra/k8s/base:
 * HPAs on CPU for ingress, model-proxy and tool-executor (70 % of the request, +100 % or +4 pods
 * per 15 s up, 5 min stabilisation and 20 %/min down), KEDA for the orchestrator (interactive lag
 * 10, batch lag 200 per replica, or CPU) and memory (turn lag 200 per replica, or CPU); pods ready
 * 30 s after they are asked for. Each layer serves up to its pods' CPU limit and in-flight bound;
 * what ingress cannot take is shed at the door (503 overloaded), an interactive queue deeper than
 * interactiveMaxDepth is shed with 429 queue_full, batch runs queue up to batchMaxDepth, and a turn
 * the model proxy or tool executor has no room for fails with a typed retryable error.
 *
 * Deterministic: the same inputs give the same day.
 */
import {
  BATCH_SHARE,
  IN_FLIGHT_PER_POD,
  type Ledger,
  mixed,
  ORCHESTRATOR_SETTINGS,
  type Plan,
  type PodShape,
  SERVICES,
  type Service,
  serviceCosts,
  TURN_MIX,
  turnSeconds,
} from "./model.js";

const STEP_S = 5;
const HPA_SYNC_S = 15;
const POD_START_S = 30;
const DOWN_STABILIZATION_S = 300;
const INTERACTIVE_MAX_DEPTH = 1000;
const BATCH_MAX_DEPTH = 100_000;
const LAG_PER_REPLICA = { interactive: 10, batch: 200, memoryTurns: 200 };
/** Orchestrator per pod: batch runs at once, alone and while interactive runs go on. */
const BATCH_PER_POD = {
  alone: ORCHESTRATOR_SETTINGS.BATCH_CONCURRENCY,
  withInteractive: ORCHESTRATOR_SETTINGS.BATCH_CONCURRENCY_WHILE_INTERACTIVE,
};
const TARGET = 0.7;

export interface Burst {
  name: string;
  atHour: number;
  minutes: number;
  /** Multiplies the interactive rate. */
  interactiveFactor?: number;
  /** Extra batch runs submitted at once over the burst. */
  batchRuns?: number;
}

export interface Scenario {
  peak: number;
  /** Share of traffic that is batch (event-triggered and API batch runs) outside bursts. */
  batchShare: number;
  bursts: Burst[];
}

export const DEFAULT_SCENARIO = (peak: number): Scenario => ({
  peak,
  batchShare: BATCH_SHARE,
  bursts: [
    { name: "morning campaign (x1.8, 10 min)", atHour: 9, minutes: 10, interactiveFactor: 1.8 },
    { name: "news spike (x3, 1 min)", atHour: 13.5, minutes: 1, interactiveFactor: 3 },
    { name: "nightly import (2M batch runs in 5 min)", atHour: 20, minutes: 5, batchRuns: 2_000_000 },
  ],
});

interface Layer {
  service: Service;
  ready: number;
  starting: Array<{ at: number; count: number }>;
  min: number;
  max: number;
  /** Desired replicas over the last DOWN_STABILIZATION_S (for scale-down). */
  history: Array<{ at: number; desired: number }>;
  shed: number;
  shedSeconds: number;
  maxReplicas: number;
}

export interface LayerFigures {
  service: Service;
  replicas: { min: number; max: number; atPeakHour: number };
  shed: number;
  shedShare: number;
  secondsShedding: number;
}

export interface DayResult {
  scenario: Scenario;
  turnsOffered: number;
  turnsServed: number;
  layers: LayerFigures[];
  queues: {
    interactive: {
      maxDepth: number;
      maxLagSeconds: number;
      secondsOverOneSecond: number;
      shedQueueFull: number;
    };
    batch: { maxDepth: number; maxLagSeconds: number; shedQueueFull: number; drainedBy: string };
    memoryTurns: { maxDepth: number; maxLagSeconds: number };
  };
  hours: Array<{
    hour: number;
    offered: number;
    replicas: Record<Service, number>;
    interactiveLagS: number;
    batchDepth: number;
    shed: number;
  }>;
  burstWindows: Array<{
    name: string;
    shed: number;
    maxInteractiveLagS: number;
    replicasBefore: Record<Service, number>;
    replicasAfter: Record<Service, number>;
    /** Shed by each layer (door, queue_full, model-proxy, tool-executor) during the burst and 10 min after. */
    shedBy: Record<string, number>;
  }>;
}

/** Interactive turns/s offered at second `t` of the day, before bursts: a diurnal curve peaking at 14:00. */
function diurnal(t: number, peak: number): number {
  const hour = t / 3600;
  const shape = 0.5 - 0.5 * Math.cos(((hour - 2) / 24) * 2 * Math.PI); // 0 at 02:00, 1 at 14:00
  // a small deterministic wobble (a few %) so the autoscalers see noise
  const wobble = 1 + 0.03 * Math.sin(t / 97) + 0.02 * Math.sin(t / 13);
  return peak * (0.3 + 0.7 * shape) * wobble;
}

export function simulateDay(
  ledger: Ledger,
  shapes: PodShape[],
  planned: Plan,
  scenario: Scenario,
): DayResult {
  const costs = new Map(serviceCosts(ledger).map((cost) => [cost.service, cost.cpuMsMixed]));
  const shape = new Map(shapes.map((candidate) => [candidate.service, candidate]));
  const night = planPods(planned, 0.3);
  const layers = new Map<Service, Layer>(
    SERVICES.map((service) => [
      service,
      {
        service,
        ready: night[service],
        starting: [],
        min: 2,
        // the manifests' maxima are set per scale: twice the planned peak's replicas
        max: planned.pods[service].replicas * 2,
        history: [],
        shed: 0,
        shedSeconds: 0,
        maxReplicas: night[service],
      },
    ]),
  );
  const meanTurn = mixed(turnSeconds);
  const toolTurnsShare = TURN_MIX.tool;

  let interactiveQueue = 0;
  let batchQueue = 0;
  let memoryQueue = 0;
  let offeredTotal = 0;
  let servedTotal = 0;
  let shedQueueFullInteractive = 0;
  let shedQueueFullBatch = 0;
  const queues = {
    interactive: { maxDepth: 0, maxLagSeconds: 0, secondsOverOneSecond: 0 },
    batch: { maxDepth: 0, maxLagSeconds: 0, lastNonEmpty: 0 },
    memoryTurns: { maxDepth: 0, maxLagSeconds: 0 },
  };
  const hours: DayResult["hours"] = [];
  let hourAccumulator = { offered: 0, shed: 0, lag: 0, batchDepth: 0 };
  const burstWindows = scenario.bursts.map((burst) => ({
    name: burst.name,
    shed: 0,
    maxInteractiveLagS: 0,
    replicasBefore: {} as Record<Service, number>,
    replicasAfter: {} as Record<Service, number>,
    shedBy: {} as Record<string, number>,
  }));

  const capacityOf = (service: Service) => {
    const pods = layers.get(service)!.ready;
    const cpuBound = pods * shape.get(service)!.turnsPerPodAtLimit;
    const inFlight = IN_FLIGHT_PER_POD[service];
    const concurrencyBound = (pods * inFlight.bound) / Math.max(0.001, mixed(inFlight.seconds));
    return Math.min(cpuBound, concurrencyBound);
  };

  for (let t = 0; t < 86_400; t += STEP_S) {
    // --- arrivals
    let interactiveRate = diurnal(t, scenario.peak);
    let batchRate = interactiveRate * scenario.batchShare;
    scenario.bursts.forEach((burst, index) => {
      const start = burst.atHour * 3600;
      const end = start + burst.minutes * 60;
      if (t === Math.floor(start / STEP_S) * STEP_S)
        for (const service of SERVICES)
          burstWindows[index]!.replicasBefore[service] = layers.get(service)!.ready;
      if (t === Math.floor((end + 600) / STEP_S) * STEP_S)
        for (const service of SERVICES)
          burstWindows[index]!.replicasAfter[service] = layers.get(service)!.ready;
      if (t >= start && t < end) {
        interactiveRate *= burst.interactiveFactor ?? 1;
        batchRate += (burst.batchRuns ?? 0) / (burst.minutes * 60);
      }
    });
    const activeBurst = scenario.bursts.findIndex(
      (burst) => t >= burst.atHour * 3600 && t < burst.atHour * 3600 + burst.minutes * 60 + 600,
    );
    const offered = (interactiveRate + batchRate) * STEP_S;
    offeredTotal += offered;

    // --- ingress: the door
    const ingress = layers.get("ingress")!;
    const ingressCapacity = capacityOf("ingress") * STEP_S;
    const doorShed = Math.max(0, offered - ingressCapacity);
    const admittedShare = offered > 0 ? (offered - doorShed) / offered : 1;
    let admittedInteractive = interactiveRate * STEP_S * admittedShare;
    let admittedBatch = batchRate * STEP_S * admittedShare;
    ingress.shed += doorShed;
    if (doorShed > 0) ingress.shedSeconds += STEP_S;
    // queue bounds at the door
    const interactiveRoom = Math.max(0, INTERACTIVE_MAX_DEPTH - interactiveQueue);
    const orchestratorRate = capacityOf("orchestrator") * STEP_S;
    const interactiveFull = Math.max(0, admittedInteractive - (interactiveRoom + orchestratorRate));
    admittedInteractive -= interactiveFull;
    shedQueueFullInteractive += interactiveFull;
    const batchFull = Math.max(0, batchQueue + admittedBatch - BATCH_MAX_DEPTH);
    admittedBatch -= batchFull;
    shedQueueFullBatch += batchFull;

    // --- orchestrator: interactive first, batch in what is left (1 per pod while chat goes on)
    interactiveQueue += admittedInteractive;
    batchQueue += admittedBatch;
    const servedInteractive = Math.min(interactiveQueue, orchestratorRate);
    interactiveQueue -= servedInteractive;
    const orchestratorPods = layers.get("orchestrator")!.ready;
    const batchSlots =
      (servedInteractive > 0 ? BATCH_PER_POD.withInteractive : BATCH_PER_POD.alone) * orchestratorPods;
    const batchRateCap = Math.min(orchestratorRate - servedInteractive, (batchSlots / meanTurn) * STEP_S);
    const servedBatch = Math.min(batchQueue, Math.max(0, batchRateCap));
    batchQueue -= servedBatch;
    let served = servedInteractive + servedBatch;

    // --- model proxy and tool executor: no queue, a turn without room fails (typed, retryable)
    for (const service of ["model-proxy", "tool-executor"] as const) {
      const layer = layers.get(service)!;
      const demand = service === "tool-executor" ? served * toolTurnsShare : served;
      const capacity = capacityOf(service) * STEP_S * (service === "tool-executor" ? toolTurnsShare : 1);
      const shed = Math.max(0, demand - capacity);
      if (shed > 0) {
        layer.shed += shed;
        layer.shedSeconds += STEP_S;
        served -= shed;
        if (activeBurst >= 0)
          burstWindows[activeBurst]!.shedBy[service] =
            (burstWindows[activeBurst]!.shedBy[service] ?? 0) + shed;
      }
    }
    servedTotal += served;

    // --- memory: turns stored in their threads (a queue: THREAD_TURNS)
    memoryQueue += served;
    const memoryServed = Math.min(memoryQueue, capacityOf("memory") * STEP_S);
    memoryQueue -= memoryServed;

    // --- queue figures
    const interactiveLag = interactiveQueue / Math.max(1, servedInteractive / STEP_S);
    queues.interactive.maxDepth = Math.max(queues.interactive.maxDepth, interactiveQueue);
    queues.interactive.maxLagSeconds = Math.max(queues.interactive.maxLagSeconds, interactiveLag);
    if (interactiveLag > 1) queues.interactive.secondsOverOneSecond += STEP_S;
    queues.batch.maxDepth = Math.max(queues.batch.maxDepth, batchQueue);
    queues.batch.maxLagSeconds = Math.max(
      queues.batch.maxLagSeconds,
      batchQueue / Math.max(1, servedBatch / STEP_S),
    );
    if (batchQueue > 1) queues.batch.lastNonEmpty = t;
    queues.memoryTurns.maxDepth = Math.max(queues.memoryTurns.maxDepth, memoryQueue);
    queues.memoryTurns.maxLagSeconds = Math.max(
      queues.memoryTurns.maxLagSeconds,
      memoryQueue / Math.max(1, memoryServed / STEP_S),
    );
    if (activeBurst >= 0) {
      const window = burstWindows[activeBurst]!;
      window.shed += doorShed + interactiveFull + batchFull;
      window.shedBy.ingress = (window.shedBy.ingress ?? 0) + doorShed;
      window.shedBy["interactive queue_full"] =
        (window.shedBy["interactive queue_full"] ?? 0) + interactiveFull;
      window.shedBy["batch queue_full"] = (window.shedBy["batch queue_full"] ?? 0) + batchFull;
      window.maxInteractiveLagS = Math.max(window.maxInteractiveLagS, interactiveLag);
    }

    // --- autoscalers
    const rateServed = (servedInteractive + servedBatch) / STEP_S;
    for (const layer of layers.values()) {
      // pods asked for earlier become ready
      layer.ready += layer.starting
        .filter((start) => start.at <= t)
        .reduce((sum, start) => sum + start.count, 0);
      layer.starting = layer.starting.filter((start) => start.at > t);
      const keda = layer.service === "orchestrator" || layer.service === "memory";
      if (t % (keda ? STEP_S : HPA_SYNC_S) !== 0) continue;
      // CPU the layer would use for the load it was offered (an overloaded layer shows 100 %+ of request)
      const offeredRate =
        layer.service === "ingress"
          ? offered / STEP_S
          : layer.service === "memory"
            ? (memoryServed + memoryQueue / 10) / STEP_S
            : layer.service === "tool-executor"
              ? (rateServed + interactiveQueue / STEP_S) * toolTurnsShare
              : rateServed + interactiveQueue / STEP_S;
      const cpuMs = costs.get(layer.service)! * (layer.service === "tool-executor" ? 1 / toolTurnsShare : 1);
      const requestMilli = shape.get(layer.service)!.cpuRequestMilli;
      const utilization = (offeredRate * cpuMs) / (Math.max(1, layer.ready) * requestMilli);
      let desired = Math.ceil((layer.ready * utilization) / TARGET);
      // the in-flight bound also asks for pods (a pod full of runs waiting on the model)
      const inFlight = IN_FLIGHT_PER_POD[layer.service];
      desired = Math.max(
        desired,
        Math.ceil((offeredRate * mixed(inFlight.seconds)) / (inFlight.bound * TARGET)),
      );
      if (layer.service === "orchestrator")
        desired = Math.max(
          desired,
          Math.ceil(interactiveQueue / LAG_PER_REPLICA.interactive),
          Math.ceil(batchQueue / LAG_PER_REPLICA.batch),
        );
      if (layer.service === "memory")
        desired = Math.max(desired, Math.ceil(memoryQueue / LAG_PER_REPLICA.memoryTurns));
      desired = Math.min(layer.max, Math.max(layer.min, desired));
      layer.history.push({ at: t, desired });
      layer.history = layer.history.filter((entry) => entry.at > t - DOWN_STABILIZATION_S);
      const current = layer.ready + layer.starting.reduce((sum, start) => sum + start.count, 0);
      if (desired > current) {
        const step = Math.min(desired - current, Math.max(current, 4));
        layer.starting.push({ at: t + POD_START_S, count: step });
      } else {
        const stable = Math.max(...layer.history.map((entry) => entry.desired));
        const floor = Math.ceil(current * (1 - 0.2 * ((keda ? STEP_S : HPA_SYNC_S) / 60)));
        const target = Math.max(stable, floor, layer.min);
        if (target < layer.ready) layer.ready = target;
      }
      layer.maxReplicas = Math.max(layer.maxReplicas, layer.ready);
    }

    hourAccumulator.offered += offered;
    hourAccumulator.shed += doorShed + interactiveFull + batchFull;
    hourAccumulator.lag = Math.max(hourAccumulator.lag, interactiveLag);
    hourAccumulator.batchDepth = Math.max(hourAccumulator.batchDepth, batchQueue);
    if ((t + STEP_S) % 3600 === 0) {
      hours.push({
        hour: (t + STEP_S) / 3600 - 1,
        offered: hourAccumulator.offered / 3600,
        replicas: Object.fromEntries(
          SERVICES.map((service) => [service, layers.get(service)!.ready]),
        ) as Record<Service, number>,
        interactiveLagS: hourAccumulator.lag,
        batchDepth: hourAccumulator.batchDepth,
        shed: hourAccumulator.shed,
      });
      hourAccumulator = { offered: 0, shed: 0, lag: 0, batchDepth: 0 };
    }
  }

  const peakHour = hours.reduce((best, hour) => (hour.offered > best.offered ? hour : best), hours[0]!);
  return {
    scenario,
    turnsOffered: offeredTotal,
    turnsServed: servedTotal,
    layers: SERVICES.map((service) => {
      const layer = layers.get(service)!;
      return {
        service,
        replicas: {
          min: Math.min(...hours.map((hour) => hour.replicas[service])),
          max: layer.maxReplicas,
          atPeakHour: peakHour.replicas[service],
        },
        shed: layer.shed,
        shedShare: layer.shed / offeredTotal,
        secondsShedding: layer.shedSeconds,
      };
    }),
    queues: {
      interactive: { ...queues.interactive, shedQueueFull: shedQueueFullInteractive },
      batch: {
        maxDepth: queues.batch.maxDepth,
        maxLagSeconds: queues.batch.maxLagSeconds,
        shedQueueFull: shedQueueFullBatch,
        drainedBy: new Date(queues.batch.lastNonEmpty * 1000).toISOString().slice(11, 16),
      },
      memoryTurns: queues.memoryTurns,
    },
    hours,
    burstWindows,
  };
}

/** The replicas a plan's rate times `share` needs (the night's starting point). */
function planPods(planned: Plan, share: number): Record<Service, number> {
  return Object.fromEntries(
    SERVICES.map((service) => [service, Math.max(2, Math.ceil(planned.pods[service].replicas * share))]),
  ) as Record<Service, number>;
}
