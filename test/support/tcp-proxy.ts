import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of a server (Postgres, Redis, NATS) that a test can cut: `down()` drops
 * every connection and refuses new ones, as a server that crashed would; `up()` lets them in
 * again. Only the services pointed at the proxy see the outage, so tests beside it are unaffected.
 */
export interface TcpProxy {
  port: number;
  url(scheme: string, path?: string): string;
  down(): void;
  up(): void;
  /**
   * The next client write matching `match` reaches the server, then the proxy goes down before the
   * server's answer gets back, for `downMs`: a store that acted (committed) and crashed before it
   * could say so.
   */
  cutAfter(match: RegExp, downMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let isDown = false;
  let cut: { match: RegExp; downMs: number; done: () => void } | undefined;
  const down = () => {
    isDown = true;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  const server: Server = createServer((client) => {
    if (isDown) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.on("data", (chunk: Buffer) => {
      const armed = cut;
      if (armed?.match.test(chunk.toString("latin1"))) {
        cut = undefined;
        upstream.unpipe(client);
        upstream.write(chunk);
        // the server gets the statement; its answer never comes back
        setTimeout(() => {
          down();
          setTimeout(() => {
            isDown = false;
            armed.done();
          }, armed.downMs);
        }, 50);
        return;
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    url: (scheme, path = "") => `${scheme}://127.0.0.1:${port}${path}`,
    down,
    up: () => {
      isDown = false;
    },
    cutAfter: (match, downMs) =>
      new Promise<void>((resolve) => {
        cut = { match, downMs, done: resolve };
      }),
    close: async () => {
      isDown = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
