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
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let isDown = false;
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
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    url: (scheme, path = "") => `${scheme}://127.0.0.1:${port}${path}`,
    down: () => {
      isDown = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    up: () => {
      isDown = false;
    },
    close: async () => {
      isDown = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
