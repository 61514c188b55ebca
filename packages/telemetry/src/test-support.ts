import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One OTLP/HTTP request the collector received. */
export interface CollectedRequest {
  path: string;
  contentType: string | undefined;
  body: string;
}

/**
 * An in-process OTLP/HTTP collector for the SDK tests: it keeps every request and points
 * `OTEL_EXPORTER_OTLP_ENDPOINT` at itself until `close()` restores the variable.
 */
export async function startCollector(
  onRequest: (request: CollectedRequest) => void,
): Promise<{ close(): Promise<void> }> {
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      onRequest({
        path: request.url ?? "",
        contentType: request.headers["content-type"],
        body: Buffer.concat(chunks).toString(),
      });
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    close: async () => {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
