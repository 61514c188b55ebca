import { ConfigError } from "@agent-runtime/config";
import {
  createLogger,
  installShutdown,
  type Logger,
  type Shutdown,
  type StartupConnections,
  startOrExit,
  startTelemetry,
} from "@agent-runtime/telemetry";

/** What every service's configuration holds that `runService` reads. */
export interface ServiceConfig {
  natsUrl: string;
  databaseUrl: string;
  logLevel: string;
}

/** A started service: `stop` stops intake, lets work in flight finish and closes its connections. */
export interface StoppableService {
  stop(): Promise<void>;
}

export interface RunServiceOptions<C extends ServiceConfig, S extends StoppableService> {
  /** The service's name (logs, traces, the start-up line). */
  name: string;
  /** Reads the configuration (`loadConfig`); a `ConfigError` is said in one line and exits 1. */
  config: (env: NodeJS.ProcessEnv) => C;
  /** Starts the service (`startX(config, { logger })`). */
  start: (config: C, deps: { logger: Logger }) => Promise<S>;
  /**
   * The servers to wait for before `start` (`STARTUP_WAIT_SECONDS`): NATS and Postgres unless
   * said otherwise (a service without Postgres gives `{ natsUrl }`).
   */
  waitFor?: (config: C) => StartupConnections;
  env?: NodeJS.ProcessEnv;
  /** Shutdown signals (default SIGTERM and SIGINT) and exit (default true): tests change them. */
  signals?: readonly NodeJS.Signals[];
  exit?: boolean;
}

export interface RunningService<S> {
  service: S;
  logger: Logger;
  shutdown: Shutdown;
}

/**
 * A service's whole `main`: reads its configuration, starts logging and telemetry, waits for its
 * servers, starts it (a failure is one line and exit 1, never a stack trace), and on SIGTERM or
 * SIGINT stops it (`stop`: intake, in-flight work, connections) and then flushes telemetry, exiting
 * 0 when all went well.
 */
export async function runService<C extends ServiceConfig, S extends StoppableService>(
  options: RunServiceOptions<C, S>,
): Promise<RunningService<S>> {
  const env = options.env ?? process.env;
  const { name } = options;
  let config: C;
  try {
    config = options.config(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger({ service: name, format: "json" }).fatal(error.message);
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ service: name, level: config.logLevel });
  const telemetry = await startTelemetry({ service: name, logger });
  const connections = options.waitFor?.(config) ?? {
    natsUrl: config.natsUrl,
    databaseUrl: config.databaseUrl,
  };
  const service = await startOrExit(logger, connections, () => options.start(config, { logger }), env);
  const shutdown = installShutdown({
    logger,
    steps: [
      { name: "drain", run: () => service.stop() },
      { name: "telemetry", run: () => telemetry.shutdown() },
    ],
    ...(options.signals ? { signals: options.signals } : {}),
    ...(options.exit !== undefined ? { exit: options.exit } : {}),
  });
  return { service, logger, shutdown };
}
