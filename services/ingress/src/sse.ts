import type { FastifyReply } from "fastify";

const KEEP_ALIVE_MS = 15_000;

/** One open Server-Sent Events response. */
export interface SseStream {
  /** Writes one event; `data` objects are JSON-encoded. */
  send(data: unknown, options?: { id?: number | string; event?: string }): void;
  /** True once the client went away or the stream was ended. */
  readonly closed: boolean;
  /** Called once when the client goes away before `end()`, or (for resumable streams) the server shuts down. */
  onAbort(listener: () => void): void;
  end(): void;
}

/**
 * Open SSE responses of this replica. On shutdown they are ended, so clients
 * reconnect (with Last-Event-ID for run events) to another replica.
 */
export class SseStreams {
  private readonly open = new Set<{ abort(): void }>();

  get size(): number {
    return this.open.size;
  }

  /**
   * Takes over the reply and writes the SSE head. Resumable streams are ended at
   * shutdown; the others are left to finish while the server drains.
   */
  start(
    reply: FastifyReply,
    options: { headers?: Record<string, string>; resumable?: boolean } = {},
  ): SseStream {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      ...options.headers,
    });
    raw.flushHeaders();
    let closed = false;
    let aborted = false;
    const listeners: (() => void)[] = [];
    const keepAlive = setInterval(() => {
      if (!closed) raw.write(": keep-alive\n\n");
    }, KEEP_ALIVE_MS);
    keepAlive.unref();
    const entry = {
      abort: () => {
        if (closed) return;
        aborted = true;
        for (const listener of listeners.splice(0)) listener();
        stream.end();
      },
    };
    const finish = () => {
      closed = true;
      clearInterval(keepAlive);
      this.open.delete(entry);
    };
    // the response's close (not the request's, which fires once the body is read) tells a client left
    raw.on("close", () => {
      if (closed) return;
      aborted = true;
      finish();
      for (const listener of listeners.splice(0)) listener();
    });
    const stream: SseStream = {
      send(data, options = {}) {
        if (closed) return;
        let frame = "";
        if (options.id !== undefined) frame += `id: ${options.id}\n`;
        if (options.event) frame += `event: ${options.event}\n`;
        frame += `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
        raw.write(frame);
      },
      get closed() {
        return closed;
      },
      onAbort(listener) {
        if (aborted) listener();
        else if (!closed) listeners.push(listener);
      },
      end() {
        if (closed) return;
        finish();
        raw.end();
      },
    };
    if (options.resumable) this.open.add(entry);
    return stream;
  }

  /** Ends every open stream (shutdown). */
  endAll(): void {
    for (const entry of [...this.open]) entry.abort();
  }
}
