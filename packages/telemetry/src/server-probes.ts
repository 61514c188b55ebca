import { connect, type Socket } from "node:net";
import { userInfo } from "node:os";

/** Why a server does not answer yet (`undefined`: it answers). */
export type ProbeResult = string | undefined;

const PROBE_TIMEOUT_MS = 2000;

/** Connects to `host:port`, writes `hello` (if any) and hands every chunk read to `read` until it decides. */
function converse(
  host: string,
  port: number,
  hello: Buffer | undefined,
  read: (received: Buffer) => ProbeResult | "more",
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let done = false;
    const socket: Socket = connect({ host, port });
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(`no answer in ${PROBE_TIMEOUT_MS / 1000} s`));
    socket.on("error", (error: NodeJS.ErrnoException) =>
      finish(
        error.code === "ECONNREFUSED"
          ? "connection refused"
          : error.code === "ECONNRESET"
            ? "connection closed before it answered"
            : (error.code ?? error.message),
      ),
    );
    socket.on("close", () => finish("connection closed before it answered"));
    socket.on("connect", () => {
      if (hello) socket.write(hello);
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const verdict = read(received);
      if (verdict !== "more") finish(verdict);
    });
  });
}

/** Host and port of each server a NATS URL names (`nats://a:4222,nats://b:4222`); WebSocket URLs are not probed. */
export function natsAddresses(natsUrl: string): { host: string; port: number }[] {
  return natsUrl
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0 && !/^wss?:/i.test(part))
    .flatMap((part) => {
      try {
        const url = new URL(
          /^[a-z]+:\/\//i.test(part) ? part.replace(/^[a-z]+:/i, "http:") : `http://${part}`,
        );
        return [{ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 4222) }];
      } catch {
        return [];
      }
    });
}

/** NATS greets every client with an `INFO {...}` line: any of the URL's servers doing so is enough. */
export async function probeNats(natsUrl: string): Promise<ProbeResult> {
  const addresses = natsAddresses(natsUrl);
  if (addresses.length === 0) return undefined;
  const results = await Promise.all(
    addresses.map(({ host, port }) =>
      converse(host, port, undefined, (received) => {
        if (!received.includes(0x0a)) return "more";
        return received.subarray(0, 5).toString() === "INFO " ? undefined : "not a NATS server";
      }),
    ),
  );
  return results.includes(undefined) ? undefined : results[0];
}

/** Where and as whom to ask Postgres (`undefined`: a Unix socket, not probed). */
export function postgresTarget(
  databaseUrl: string,
): { host: string; port: number; user: string; database: string } | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  const socketHost = url.searchParams.get("host");
  if (!url.hostname || socketHost?.startsWith("/")) return undefined;
  const user = decodeURIComponent(url.username) || process.env.PGUSER || userInfo().username;
  return {
    host: (socketHost ?? url.hostname).replace(/^\[|\]$/g, ""),
    port: Number(url.port || 5432),
    user,
    database: decodeURIComponent(url.pathname.slice(1)) || user,
  };
}

/** A protocol 3.0 StartupMessage. */
function startupMessage(user: string, database: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
  const message = Buffer.alloc(8 + body.length);
  message.writeInt32BE(message.length, 0);
  message.writeInt32BE(196608, 4);
  body.copy(message, 8);
  return message;
}

/** The SQLSTATE of an ErrorResponse (`E`) message. */
function errorCode(message: Buffer): string | undefined {
  let offset = 5;
  while (offset < message.length && message[offset] !== 0) {
    const field = String.fromCharCode(message[offset]!);
    const end = message.indexOf(0, offset + 1);
    if (end < 0) return undefined;
    if (field === "C") return message.subarray(offset + 1, end).toString();
    offset = end + 1;
  }
  return undefined;
}

/**
 * Postgres accepts sessions once it answers a StartupMessage with an authentication request (or any
 * error but "starting up" / "shutting down" / "too many connections": a wrong database or password is
 * for the service's own start to report).
 */
export async function probePostgres(databaseUrl: string): Promise<ProbeResult> {
  const target = postgresTarget(databaseUrl);
  if (!target) return undefined;
  return converse(target.host, target.port, startupMessage(target.user, target.database), (received) => {
    if (received.length < 5) return "more";
    const kind = String.fromCharCode(received[0]!);
    if (kind === "R") return undefined;
    if (kind !== "E") return "not a Postgres server";
    if (received.length < received.readInt32BE(1) + 1) return "more";
    const code = errorCode(received);
    if (code === "57P03") return "the database system is starting up";
    if (code === "57P01" || code === "57P02") return "the database system is shutting down";
    if (code === "53300") return "too many connections";
    return undefined;
  });
}
