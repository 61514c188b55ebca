import type { Logger } from "./logger.js";

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

interface StartupConnections {
  natsUrl: string;
  databaseUrl: string;
}

function hidePassword(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1@");
}

/**
 * What a failed start means, in one line: which server could not be reached at which URL and what to
 * start, or the error's own message (never a stack trace).
 */
export function startupFailure(error: unknown, connections: StartupConnections): string {
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
    return `cannot reach Postgres at ${hidePassword(connections.databaseUrl)} (${message}). Start the servers with \`${START_SERVERS_COMMAND}\`, or set DATABASE_URL.`;
  }
  if (code === "3D000" || code === "28P01" || code === "28000") {
    return `Postgres at ${hidePassword(connections.databaseUrl)} refused the connection: ${message}. Check DATABASE_URL.`;
  }
  if (code === "EADDRINUSE") {
    return `${message}: another process holds that port. Set the service's own port (PORT, <SERVICE>_OPS_PORT) or 0 for a free one.`;
  }
  return `could not start: ${message}`;
}

/**
 * A service's `main`: runs `start`, and when it fails prints what failed in one line (logged as
 * `fatal` too) and exits 1, instead of an unhandled rejection's stack trace.
 */
export async function startOrExit<T>(
  logger: Logger,
  connections: StartupConnections,
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const line = startupFailure(error, connections);
    logger.fatal({ err: error }, line);
    process.stderr.write(`${line}\n`);
    logger.flush?.();
    process.exit(1);
  }
}
