import pg from "pg";
import { DATABASE_URL } from "./isolation.js";
import { type Stack, type StackOptions, startStack } from "./stack.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

/** A stack whose every service reaches Postgres through a proxy the test cuts, and a client to look at its schema. */
export interface StackBehindStoreProxy {
  stack: Stack;
  proxy: TcpProxy;
  /** Connected straight to Postgres (not through the proxy), search_path on the stack's schema. */
  db: pg.Client;
  stop(): Promise<void>;
}

export async function startStackBehindStoreProxy(options: StackOptions): Promise<StackBehindStoreProxy> {
  const target = new URL(DATABASE_URL);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(DATABASE_URL);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const stack = await startStack({ ...options, env: { ...options.env, DATABASE_URL: viaProxy.toString() } });
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query(`SET search_path TO "${stack.isolation.schema}"`);
  return {
    stack,
    proxy,
    db,
    stop: async () => {
      proxy.up();
      await db.end();
      await stack.stop();
      await proxy.close();
    },
  };
}
