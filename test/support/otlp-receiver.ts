import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** An OTLP attribute value as OTLP/JSON encodes it. */
export interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}

export interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpKeyValue[];
  status?: { code?: number; message?: string };
}

export interface OtlpDataPoint {
  attributes?: OtlpKeyValue[];
  asDouble?: number;
  asInt?: number | string;
  count?: number | string;
  sum?: number;
  bucketCounts?: Array<number | string>;
  explicitBounds?: number[];
}

export interface OtlpMetric {
  name: string;
  description?: string;
  sum?: { dataPoints: OtlpDataPoint[]; isMonotonic?: boolean };
  gauge?: { dataPoints: OtlpDataPoint[] };
  histogram?: { dataPoints: OtlpDataPoint[] };
}

/**
 * A collector stand-in: an HTTP server taking OTLP/HTTP JSON exports (`/v1/traces`, `/v1/metrics`),
 * as the SDK's OTLP/HTTP exporters send them by default.
 */
export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans(): OtlpSpan[];
  /** Every metric export, in order of arrival. */
  metricExports(): OtlpMetric[][];
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: OtlpSpan[] = [];
  const metricExports: OtlpMetric[][] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString();
      if (!String(request.headers["content-type"]).includes("json")) {
        response.writeHead(415).end();
        return;
      }
      const body = JSON.parse(text) as {
        resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
        resourceMetrics?: Array<{ scopeMetrics?: Array<{ metrics?: OtlpMetric[] }> }>;
      };
      if (request.url === "/v1/traces") {
        for (const resource of body.resourceSpans ?? [])
          for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []));
      } else if (request.url === "/v1/metrics") {
        metricExports.push(
          (body.resourceMetrics ?? []).flatMap((resource) =>
            (resource.scopeMetrics ?? []).flatMap((scope) => scope.metrics ?? []),
          ),
        );
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: () => [...spans],
    metricExports: () => [...metricExports],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** An OTLP attribute list as a plain record. */
export function attributesOf(item: { attributes?: OtlpKeyValue[] }): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const { key, value } of item.attributes ?? []) {
    record[key] =
      value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.doubleValue ??
      value.boolValue ??
      value.arrayValue?.values?.map((entry) => entry.stringValue ?? entry.intValue ?? entry.doubleValue);
  }
  return record;
}
