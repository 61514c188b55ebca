import { z } from "zod";
import type { Logger } from "./logger.js";
import { type ProbeResult, probeNats, probePostgres } from "./server-probes.js";

/** The command (README) that starts just the servers the runtime needs. */
export const START_SERVERS_COMMAND = "docker compose up -d nats postgres redis";

/**
 * Says a service is up in one line a person reads (on stderr, beside the JSON logs on stdout):
 * what it reached and where it answers. The same line is logged, with `fields`, as JSON.
 */
export function announceReady(
  logger: Logger,
  service: string,
  parts: readonly string[],
  fields: Record<string, unknown> = {},
): void {
  const line = `${service} ready · ${parts.join(" · ")}`;
  logger.info(fields, line);
  // quiet loggers (tests) keep stderr quiet too
  if (logger.isLevelEnabled("info")) process.stderr.write(`${line}\n`);
}

export interface StartupConnections {
  natsUrl: string;
  /** Absent for a service that uses no Postgres (it is then not waited for). */
  databaseUrl?: string;
}

/** A server still unreachable when the start-up wait ran out. */
export class ServerUnreachable extends Error {
  constructor(
    readonly server: "NATS" | "Postgres",
    readonly url: string,
    readonly reason: string,
    readonly waitedMs: number,
  ) {
    super(`${server} at ${url} did not answer in ${Math.round(waitedMs / 1000)} s (${reason})`);
    this.name = new.target.name;
  }
}

function hidePassword(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1@");
}

/**
 * What a failed start means, in one line: which server could not be reached at which URL and what to
 * start, or the error's own message (never a stack trace).
 */
export function startupFailure(error: unknown, connections: StartupConnections): string {
  if (error instanceof ServerUnreachable) {
    const variable = error.server === "NATS" ? "NATS_URL" : "DATABASE_URL";
    return `cannot reach ${error.server} at ${error.url} (waited ${Math.round(error.waitedMs / 1000)} s: ${error.reason}). Start the servers with \`${START_SERVERS_COMMAND}\`, or set ${variable}.`;
  }
  const failure = error as { name?: string; code?: string; message?: string } | undefined;
  const message = failure?.message ?? String(error);
  if (failure?.name === "ConnectionError" || /CONNECTION_REFUSED|connection refused$/i.test(message)) {
    return `cannot reach NATS at ${connections.natsUrl} (${message}). Start the servers with \`${START_SERVERS_COMMAND}\`, or set NATS_URL.`;
  }
  const code = failure?.code ?? "";
  if (
    ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH"].includes(code) ||
    /timeout exceeded when trying to connect|Connection terminated/i.test(message)
  ) {
    return `cannot reach Postgres at ${hidePassword(connections.databaseUrl ?? "")} (${message}). Start the servers with \`${START_SERVERS_COMMAND}\`, or set DATABASE_URL.`;
  }
  if (code === "3D000" || code === "28P01" || code === "28000") {
    return `Postgres at ${hidePassword(connections.databaseUrl ?? "")} refused the connection: ${message}. Check DATABASE_URL.`;
  }
  if (code === "EADDRINUSE") {
    return `${message}: another process holds that port. Set the service's own port (PORT, <SERVICE>_OPS_PORT) or 0 for a free one.`;
  }
  return `could not start: ${message}`;
}

export interface WaitOptions {
  /** How long to wait for the servers in all (0: not at all). */
  timeoutMs: number;
  /** Where the lines a person reads go (stderr by default). */
  write?: (line: string) => void;
  /** The first pause between tries; each next one doubles, up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/** `STARTUP_WAIT_SECONDS`: how long a service waits for NATS and Postgres at start (default 60, 0 = not at all). */
export const StartupWaitEnv = z.object({
  STARTUP_WAIT_SECONDS: z.coerce.number().min(0).max(3600).default(60),
});

/**
 * Waits until NATS (and Postgres, when the service uses it) answer, trying again with growing pauses
 * (0.25 s doubling up to 5 s) for up to `timeoutMs`. Says once per server and reason what it waits for
 * ("waiting for NATS at … (connection refused) …") and when the server came up; throws
 * `ServerUnreachable` when the time runs out.
 */
export async function waitForServers(
  logger: Logger,
  connections: StartupConnections,
  options: WaitOptions,
): Promise<void> {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const servers: { name: "NATS" | "Postgres"; url: string; probe: () => Promise<ProbeResult> }[] = [
    { name: "NATS", url: hidePassword(connections.natsUrl), probe: () => probeNats(connections.natsUrl) },
  ];
  const databaseUrl = connections.databaseUrl;
  if (databaseUrl)
    servers.push({
      name: "Postgres",
      url: hidePassword(databaseUrl),
      probe: () => probePostgres(databaseUrl),
    });
  const started = Date.now();
  const said = new Map<string, string>();
  let delay = options.initialDelayMs ?? 250;
  for (;;) {
    const results = await Promise.all(servers.map((server) => server.probe()));
    let missing: { server: (typeof servers)[number]; reason: string } | undefined;
    servers.forEach((server, index) => {
      const reason = results[index];
      if (reason === undefined) {
        if (said.has(server.name)) {
          const line = `${server.name} at ${server.url} answers (after ${((Date.now() - started) / 1000).toFixed(1)} s)`;
          logger.info({ server: server.name, url: server.url }, line);
          write(line);
          said.delete(server.name);
        }
        return;
      }
      missing ??= { server, reason };
      if (said.get(server.name) === reason) return;
      said.set(server.name, reason);
      const line = `waiting for ${server.name} at ${server.url} (${reason}); start the servers with \`${START_SERVERS_COMMAND}\` — retrying for up to ${Math.round(options.timeoutMs / 1000)} s`;
      logger.warn({ server: server.name, url: server.url, reason }, line);
      write(line);
    });
    if (!missing) return;
    const waited = Date.now() - started;
    if (waited + delay > options.timeoutMs)
      throw new ServerUnreachable(missing.server.name, missing.server.url, missing.reason, waited);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, options.maxDelayMs ?? 5000);
  }
}

/**
 * A service's `main`: waits for its servers (`STARTUP_WAIT_SECONDS`, see `waitForServers`), runs
 * `start`, and when either fails prints what failed in one line (logged as
 * `fatal` too) and exits 1, instead of an unhandled rejection's stack trace.
 */
export async function startOrExit<T>(
  logger: Logger,
  connections: StartupConnections,
  start: () => Promise<T>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  try {
    const wait = StartupWaitEnv.safeParse(env);
    if (!wait.success) throw new Error("STARTUP_WAIT_SECONDS must be a number of seconds from 0 to 3600");
    if (wait.data.STARTUP_WAIT_SECONDS > 0)
      await waitForServers(logger, connections, { timeoutMs: wait.data.STARTUP_WAIT_SECONDS * 1000 });
    return await start();
  } catch (error) {
    const line = startupFailure(error, connections);
    logger.fatal({ err: error }, line);
    process.stderr.write(`${line}\n`);
    logger.flush?.();
    process.exit(1);
  }
}
