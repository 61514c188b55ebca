import type { Logger } from "./logger.js";

export interface ShutdownStep {
  name: string;
  run: () => Promise<void>;
}

export interface ShutdownOptions {
  logger: Logger;
  /** Run in order, each awaited: for example stop intake, drain in-flight work, close connections. */
  steps: ShutdownStep[];
  /** Past this the process exits 1 (default 25 000 ms, inside Kubernetes' 30 s grace period). */
  timeoutMs?: number;
  /** Exit the process when done (default true); tests pass false. */
  exit?: boolean;
  /** Signals that start the shutdown (default SIGTERM and SIGINT); `[]` installs no handler. */
  signals?: readonly NodeJS.Signals[];
}

export interface Shutdown {
  /** Starts the shutdown (once; later calls return the same promise). */
  trigger(reason: string): Promise<void>;
  /** True from the moment the shutdown starts; `/readyz` answers 503 from then on. */
  isDraining(): boolean;
}

const DEFAULT_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

/**
 * Graceful stop. On the first signal (or `trigger`) runs the steps in order,
 * logging each, then exits 0; exits 1 if a step failed or the whole thing
 * took longer than `timeoutMs`. Handlers are `once`: a second signal gets the
 * default behaviour and kills the process at once.
 */
export function installShutdown(options: ShutdownOptions): Shutdown {
  const { logger } = options;
  const exit = options.exit ?? true;
  const timeoutMs = options.timeoutMs ?? 25_000;
  let running: Promise<void> | undefined;

  const finish = (code: 0 | 1): void => {
    if (!exit) return;
    logger.flush();
    process.exit(code);
  };

  async function runSteps(state: { timedOut: boolean }): Promise<boolean> {
    let failed = false;
    for (const step of options.steps) {
      if (state.timedOut) return false;
      const started = performance.now();
      try {
        await step.run();
        logger.info({ step: step.name, ms: Math.round(performance.now() - started) }, "shutdown step done");
      } catch (error) {
        failed = true;
        logger.error({ err: error, step: step.name }, "shutdown step failed");
      }
    }
    return !failed;
  }

  async function shutdown(reason: string): Promise<void> {
    logger.info({ reason, timeoutMs }, "shutting down");
    const state = { timedOut: false };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
      timer.unref();
    });
    const outcome = await Promise.race([runSteps(state), timeout]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      state.timedOut = true;
      logger.error({ timeoutMs }, "shutdown took too long; exiting");
      finish(1);
      return;
    }
    logger.info({ clean: outcome }, "shutdown complete");
    finish(outcome ? 0 : 1);
  }

  const trigger = (reason: string): Promise<void> => {
    running ??= shutdown(reason);
    return running;
  };

  for (const signal of options.signals ?? DEFAULT_SIGNALS) {
    process.once(signal, () => void trigger(signal));
  }
  return { trigger, isDraining: () => running !== undefined };
}
