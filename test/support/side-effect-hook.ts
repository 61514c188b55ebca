import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One call the hook received. */
export interface HookCall {
  /** The `idempotency-key` header the tool executor sends with a side-effecting call. */
  key: string;
  body: string;
  at: number;
  /**
   * A hook that honours keys (`honorKeys`) did not act on this call: its key had come before, and
   * it answered with its first answer.
   */
  repeat?: true;
}

/**
 * A side-effecting HTTP webhook that counts its calls per idempotency key (and keeps every body,
 * so a test can count calls per business id too). Answers after `delayMs`, so a fault can land
 * while a call is in flight. With `honorKeys` it acts once per key, as a payment API does: a call
 * whose key came before is kept as a `repeat` and answered as the first was.
 */
export interface SideEffectHook {
  url: string;
  calls: HookCall[];
  /** Calls per idempotency key. */
  callsByKey(): Map<string, number>;
  close(): Promise<void>;
}

export async function startSideEffectHook(
  options: { delayMs?: number; honorKeys?: boolean } = {},
): Promise<SideEffectHook> {
  const calls: HookCall[] = [];
  const seen = new Set<string>();
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => {
      const header = request.headers["idempotency-key"];
      const key = typeof header === "string" ? header : "";
      const repeat = options.honorKeys === true && key !== "" && seen.has(key);
      seen.add(key);
      calls.push({ key, body, at: Date.now(), ...(repeat ? { repeat: true as const } : {}) });
      setTimeout(() => {
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ shipped: true }));
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ship`,
    calls,
    callsByKey: () => {
      const counts = new Map<string, number>();
      for (const call of calls) counts.set(call.key, (counts.get(call.key) ?? 0) + 1);
      return counts;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
