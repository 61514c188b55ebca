import type { Logger } from "./logger.js";

export interface ShutdownStep {
  name: string;
  run: () => Promise<void>;
}

export interface Shutdown {
  trigger(reason: string): Promise<void>;
  isDraining(): boolean;
}

/**
 * Graceful stop on SIGTERM/SIGINT: runs the steps in order (stop intake,
 * finish in-flight work, close connections), then exits; exits 1 if it takes
 * longer than `timeoutMs`.
 */
export function installShutdown(options: {
  logger: Logger;
  steps: ShutdownStep[];
  timeoutMs?: number;
  exit?: boolean;
  signals?: NodeJS.Signals[];
}): Shutdown {
  const { logger } = options;
  const exit = options.exit ?? true;
  const timeoutMs = options.timeoutMs ?? 25_000;
  let running: Promise<void> | undefined;

  const trigger = (reason: string): Promise<void> => {
    running ??= (async () => {
      logger.info({ reason }, "shutting down");
      const timer = setTimeout(() => {
        logger.error({ timeoutMs }, "shutdown took too long; exiting");
        if (exit) process.exit(1);
      }, timeoutMs);
      timer.unref();
      let failed = false;
      for (const step of options.steps) {
        try {
          await step.run();
          logger.info({ step: step.name }, "shutdown step done");
        } catch (error) {
          failed = true;
          logger.error({ err: error, step: step.name }, "shutdown step failed");
        }
      }
      clearTimeout(timer);
      logger.info("shutdown complete");
      if (exit) process.exit(failed ? 1 : 0);
    })();
    return running;
  };

  for (const signal of options.signals ?? (["SIGTERM", "SIGINT"] as NodeJS.Signals[])) {
    process.once(signal, () => void trigger(signal));
  }
  return { trigger, isDraining: () => running !== undefined };
}
