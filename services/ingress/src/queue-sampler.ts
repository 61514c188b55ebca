import type { Bus } from "@agent-runtime/bus";
import { Consumers } from "@agent-runtime/contracts";
import type { Metrics } from "@agent-runtime/telemetry";
import type pg from "pg";
import { writeQueueDepth } from "./stats-rollups.js";

/** JetStream consumers whose backlog is watched; `lane` marks the run lanes the dashboard charts. */
const WATCHED = [
  { stream: "RUNS", consumer: Consumers.runsInteractive, lane: "interactive" },
  { stream: "RUNS", consumer: Consumers.runsBatch, lane: "batch" },
  { stream: "EVENTS", consumer: Consumers.events },
  { stream: "USAGE", consumer: Consumers.usage },
] as const;
const SAMPLE_MS = 5000;

/**
 * Samples the backlog of the runtime's JetStream consumers: `jetstream_consumer_pending`
 * (stored, not yet delivered: the lag) and `jetstream_consumer_ack_pending` (delivered,
 * not yet finished) gauges, and the deepest value per lane and minute, 5 minutes, hour and
 * day in `queue_depth_*` for the dashboard. Consumers that do not exist yet are skipped.
 */
export function startQueueSampler(
  bus: Bus,
  pool: pg.Pool,
  metrics: Metrics,
  sampleMs: number = SAMPLE_MS,
): () => void {
  const labels = ["stream", "consumer", "lane"] as const;
  const pending = metrics.gauge(
    "jetstream_consumer_pending",
    "messages stored but not yet delivered",
    labels,
  );
  const ackPending = metrics.gauge(
    "jetstream_consumer_ack_pending",
    "messages delivered and not yet acknowledged",
    labels,
  );
  const sample = async () => {
    const lanes: { lane: string; pending: number; ackPending: number }[] = [];
    for (const watched of WATCHED) {
      // null: the consumer is not there yet; one that cannot be asked this time is skipped too
      const backlog = await bus.consumerBacklog(watched.stream, watched.consumer).catch(() => null);
      if (!backlog) continue;
      const lane = "lane" in watched ? watched.lane : "";
      const series = { stream: watched.stream, consumer: watched.consumer, lane };
      pending.set(series, backlog.pending);
      ackPending.set(series, backlog.ackPending);
      if (lane) lanes.push({ lane, ...backlog });
    }
    await writeQueueDepth(pool, Date.now(), lanes);
  };
  let running = false;
  const timer = setInterval(() => {
    if (running || bus.isDraining) return;
    running = true;
    void sample()
      .catch(() => undefined)
      .finally(() => {
        running = false;
      });
  }, sampleMs);
  timer.unref();
  return () => clearInterval(timer);
}
