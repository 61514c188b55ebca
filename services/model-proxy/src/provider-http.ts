import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { endHttpClientSpan, startHttpClientSpan } from "@agent-runtime/telemetry";

/** The part of the `fetch` signature the `openai` client calls. */
export type ProviderFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Sockets kept open per provider host (one agent per process, shared by every provider). */
const MAX_SOCKETS = 512;

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, scheduling: "lifo" }),
  https: new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, scheduling: "lifo" }),
};

/**
 * The `fetch` the model proxy gives the `openai` client: node:http with keep-alive sockets instead
 * of the global (WHATWG) fetch. A provider call is the proxy's hottest path and the web-stream
 * machinery of the global fetch costs about as much CPU as the rest of the call; this transport
 * reads a JSON reply as one buffer and hands the SDK a minimal response (status, headers, `json()`,
 * `text()`). A server-sent-event reply is handed over as a web stream, as the SDK reads streams.
 * Anything this transport does not speak (a non-text request body) goes through the global fetch.
 */
export const providerFetch: ProviderFetch = (input, init = {}) => {
  const body = init.body;
  if (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array))
    return fetch(input, init);
  const url = input instanceof URL ? input : new URL(typeof input === "string" ? input : input.url);
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const secure = url.protocol === "https:";
  const method = init.method ?? "GET";
  const headers = requestHeaders(init.headers, body ?? undefined);
  const span = startHttpClientSpan(method, url, headers);
  let spanEnded = false;
  const endSpan = (outcome: Parameters<typeof endHttpClientSpan>[1]) => {
    if (spanEnded) return;
    spanEnded = true;
    endHttpClientSpan(span, outcome);
  };
  return new Promise<Response>((resolve, reject) => {
    const request = (secure ? https : http).request(
      {
        agent: secure ? agents.https : agents.http,
        protocol: url.protocol,
        hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        ...(signal ? { signal } : {}),
      },
      (incoming) => {
        const replyHeaders = responseHeadersOf(incoming);
        const status = incoming.statusCode ?? 0;
        const contentType = replyHeaders.get("content-type") ?? "";
        const decoded = decode(incoming, replyHeaders.get("content-encoding"));
        if (contentType.startsWith("text/event-stream")) {
          decoded.once("end", () => endSpan({ status }));
          decoded.once("error", (error) => endSpan({ error }));
          incoming.once("close", () =>
            endSpan(incoming.complete ? { status } : { error: "stream cut short" }),
          );
          // a stream is read by the SDK as it arrives
          resolve(
            new Response(Readable.toWeb(decoded) as ReadableStream<Uint8Array>, {
              status,
              statusText: incoming.statusMessage ?? "",
              headers: replyHeaders,
            }),
          );
          return;
        }
        const chunks: Buffer[] = [];
        const fail = (error: unknown) => {
          const failure = signal?.aborted ? abortError(signal) : error;
          endSpan({ error: failure });
          reject(failure);
        };
        decoded.on("data", (chunk: Buffer) => chunks.push(chunk));
        decoded.once("error", fail);
        if (decoded !== incoming) incoming.once("error", fail);
        decoded.once("end", () => {
          endSpan({ status });
          resolve(bufferedResponse(url.href, status, incoming, replyHeaders, chunks));
        });
        // a connection closed before the end of the body is an error, not a short reply
        incoming.once("close", () => {
          if (!incoming.complete)
            fail(new Error("the provider closed the connection before the end of its reply"));
        });
      },
    );
    request.once("error", (error) => {
      const failure = signal?.aborted ? abortError(signal) : error;
      endSpan({ error: failure });
      reject(failure);
    });
    request.end(body ?? undefined);
  });
};

/** A response read to its end: what the SDK reads of a JSON (or error) reply. */
function bufferedResponse(
  url: string,
  status: number,
  incoming: http.IncomingMessage,
  headers: Headers,
  chunks: Buffer[],
): Response {
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  let text: string | undefined;
  const asText = () => {
    text ??= bytes.toString("utf8");
    return text;
  };
  const minimal = {
    ok: status >= 200 && status < 300,
    status,
    statusText: incoming.statusMessage ?? "",
    url,
    redirected: false,
    type: "basic",
    headers,
    body: null,
    bodyUsed: false,
    text: async () => asText(),
    json: async () => JSON.parse(asText()) as unknown,
    arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    clone: () => bufferedResponse(url, status, incoming, headers, [bytes]),
  };
  return minimal as unknown as Response;
}

/** The request's headers as node:http takes them, with the body's length (not a chunked body). */
function requestHeaders(
  headers: RequestInit["headers"],
  body: string | Uint8Array | undefined,
): Record<string, string> {
  const plain: Record<string, string> = {};
  if (headers instanceof Headers) {
    headers.forEach((value, name) => {
      plain[name] = value;
    });
  } else if (headers) {
    const entries = Array.isArray(headers) ? headers : Object.entries(headers);
    for (const [name, value] of entries) if (value !== undefined) plain[name.toLowerCase()] = String(value);
  }
  if (body !== undefined)
    plain["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  return plain;
}

function responseHeadersOf(incoming: http.IncomingMessage): Headers {
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) headers.append(raw[index]!, raw[index + 1]!);
  return headers;
}

/** The body as sent before any content encoding (a provider may compress though it was not asked to). */
function decode(incoming: http.IncomingMessage, encoding: string | null): Readable {
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return incoming.pipe(zlib.createGunzip());
    case "deflate":
      return incoming.pipe(zlib.createInflate());
    case "br":
      return incoming.pipe(zlib.createBrotliDecompress());
    default:
      return incoming;
  }
}

function abortError(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === "AbortError") return reason;
  return new DOMException("This operation was aborted", "AbortError");
}
