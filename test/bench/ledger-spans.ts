/**
 * A minimal OTLP/HTTP trace collector for the ledger benchmark (the services'
 * exporter posts JSON to /v1/traces), and the time line of one turn's spans.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  service: string;
  /** OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** Epoch milliseconds (fractional). */
  startMs: number;
  endMs: number;
}

export interface SpanCollector {
  /** Base URL; the trace endpoint is `${url}/v1/traces`. */
  url: string;
  spans: CollectedSpan[];
  /** Export requests refused because they were not JSON. */
  refused: number;
  close(): Promise<void>;
}

type Nanos = string | number | { low: number; high: number };

interface OtlpJson {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value?: { stringValue?: string } }> };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        startTimeUnixNano: Nanos;
        endTimeUnixNano: Nanos;
      }>;
    }>;
  }>;
}

function nanosToMs(value: Nanos): number {
  const nanos =
    typeof value === "object" ? (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0) : BigInt(value);
  return Number(nanos / 1000n) / 1000;
}

/** Accepts OTLP/HTTP JSON trace exports on a free loopback port and keeps every span. */
export async function startSpanCollector(): Promise<SpanCollector> {
  const collector: SpanCollector = { url: "", spans: [], refused: 0, close: async () => undefined };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.url !== "/v1/traces" || !String(request.headers["content-type"]).includes("json")) {
        collector.refused++;
        response.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpJson;
      for (const resource of body.resourceSpans ?? []) {
        const service =
          resource.resource?.attributes?.find((attribute) => attribute.key === "service.name")?.value
            ?.stringValue ?? "?";
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            collector.spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId || undefined,
              name: span.name,
              service,
              kind: span.kind ?? 1,
              startMs: nanosToMs(span.startTimeUnixNano),
              endMs: nanosToMs(span.endTimeUnixNano),
            });
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  collector.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  collector.close = () => new Promise((resolve) => server.close(() => resolve()));
  return collector;
}

export interface HopRow {
  service: string;
  name: string;
  depth: number;
  /** From the moment the client sent the request. */
  offsetMs: number;
  durationMs: number;
  /** Duration minus the time its synchronous child spans cover. */
  selfMs: number;
  /** Consumer of a message its parent published: not waited for by the parent. */
  asynchronous: boolean;
}

export interface TurnHops {
  clientMs: number;
  /** Spans of traces that began while the turn ran, in start order, children under parents. */
  spans: HopRow[];
  /** Client sent → first span began (ingress, the run's JetStream publish and delivery). */
  beforeFirstSpanMs: number;
  /** Last synchronous span that ended before the answer → client had the answer (run events, ingress, HTTP). */
  afterLastSpanMs: number;
  /** Spans of traces that began after the client had its answer (work off the critical path). */
  afterAnswer: HopRow[];
}

const round = (value: number) => Math.round(value * 100) / 100;

const CONSUMER = 5;

/** Time inside [from, to] covered by any of the intervals. */
function coveredMs(from: number, to: number, intervals: Array<[number, number]>): number {
  let covered = 0;
  let reach = from;
  for (const [start, end] of [...intervals].sort((a, b) => a[0] - b[0])) {
    if (start >= to) break;
    if (end <= reach) continue;
    covered += Math.min(end, to) - Math.max(start, reach);
    reach = Math.min(end, to);
  }
  return covered;
}

/**
 * The spans of one turn: every trace whose root began between the client's
 * send (`sentMs`) and `windowEndMs` (the next turn's send), laid out from the
 * send. `stripPrefix` removes the isolation's subject prefix from span names.
 */
export function turnHops(
  spans: CollectedSpan[],
  turn: { sentMs: number; answeredMs: number; windowEndMs: number },
  stripPrefix = "",
): TurnHops {
  const byId = new Map(spans.map((span) => [span.spanId, span]));
  const children = new Map<string, CollectedSpan[]>();
  const roots: CollectedSpan[] = [];
  for (const span of spans) {
    if (span.parentSpanId && byId.has(span.parentSpanId)) {
      const siblings = children.get(span.parentSpanId) ?? [];
      siblings.push(span);
      children.set(span.parentSpanId, siblings);
    } else if (span.startMs >= turn.sentMs && span.startMs < turn.windowEndMs) {
      roots.push(span);
    }
  }
  const rows = (root: CollectedSpan): HopRow[] => {
    const out: HopRow[] = [];
    const visit = (span: CollectedSpan, depth: number, asynchronous: boolean) => {
      const kids = (children.get(span.spanId) ?? []).sort((a, b) => a.startMs - b.startMs);
      const waitedFor = kids.filter((kid) => kid.kind !== CONSUMER);
      const covered = coveredMs(
        span.startMs,
        span.endMs,
        waitedFor.map((kid) => [kid.startMs, kid.endMs]),
      );
      out.push({
        service: span.service,
        name: stripPrefix ? span.name.replaceAll(`${stripPrefix}.`, "") : span.name,
        depth,
        offsetMs: round(span.startMs - turn.sentMs),
        durationMs: round(span.endMs - span.startMs),
        selfMs: round(span.endMs - span.startMs - covered),
        asynchronous,
      });
      for (const kid of kids) visit(kid, depth + 1, asynchronous || kid.kind === CONSUMER);
    };
    visit(root, 0, false);
    return out;
  };
  roots.sort((a, b) => a.startMs - b.startMs);
  const during = roots.filter((root) => root.startMs < turn.answeredMs);
  const after = roots.filter((root) => root.startMs >= turn.answeredMs);
  const duringRows = during.flatMap(rows);
  const firstStart = Math.min(...during.map((root) => root.startMs));
  const endsBeforeAnswer = duringRows
    .filter((row) => !row.asynchronous)
    .map((row) => turn.sentMs + row.offsetMs + row.durationMs)
    .filter((end) => end <= turn.answeredMs);
  return {
    clientMs: round(turn.answeredMs - turn.sentMs),
    spans: duringRows,
    beforeFirstSpanMs: during.length > 0 ? round(firstStart - turn.sentMs) : Number.NaN,
    afterLastSpanMs:
      endsBeforeAnswer.length > 0 ? round(turn.answeredMs - Math.max(...endsBeforeAnswer)) : Number.NaN,
    afterAnswer: after.flatMap(rows),
  };
}

/** Prints a turn's time line: offset from the client's send, duration, self time, service and span. */
export function printHops(title: string, hops: TurnHops): void {
  console.log(`\n${title}: ${hops.clientMs} ms at the client`);
  const line = (row: HopRow) =>
    console.log(
      `  ${row.offsetMs.toFixed(2).padStart(8)} ${row.durationMs.toFixed(2).padStart(8)} ${row.selfMs
        .toFixed(2)
        .padStart(
          8,
        )}  ${"  ".repeat(row.depth)}${row.service}: ${row.name}${row.asynchronous ? " (asynchronous)" : ""}`,
    );
  console.log(
    `  ${"offset".padStart(8)} ${"duration".padStart(8)} ${"self".padStart(8)}  (ms; span starts have 1 ms resolution)`,
  );
  console.log(
    `  ${"0.00".padStart(8)} ${hops.beforeFirstSpanMs.toFixed(2).padStart(8)} ${"".padStart(8)}  client → first span (ingress, JetStream)`,
  );
  for (const row of hops.spans) line(row);
  console.log(
    `  ${(hops.clientMs - hops.afterLastSpanMs).toFixed(2).padStart(8)} ${hops.afterLastSpanMs
      .toFixed(2)
      .padStart(8)} ${"".padStart(8)}  last span → client has the answer (run events, ingress, HTTP)`,
  );
  if (hops.afterAnswer.length > 0) {
    console.log("  after the answer:");
    for (const row of hops.afterAnswer) line(row);
  }
}
