/** How `retryUntilDeadline` retries. Times are milliseconds; `deadline` is epoch ms. */
export interface RetryOptions {
  /** No wait ends at or past it: the last error is thrown instead. */
  deadline: number;
  /** Checked after each failure: once aborted, the last error is thrown instead of retrying. */
  signal?: AbortSignal | undefined;
  /** The first wait; each later one doubles. Default 50. */
  baseMs?: number;
  /** No wait (before jitter) grows past this. Default 2000. */
  maxMs?: number;
  /**
   * The share of each wait drawn at random: the wait is `backoff * (1 - jitter + jitter * random())`,
   * so between `backoff * (1 - jitter)` and `backoff`. 0 waits exactly the backoff. Default 0.5.
   */
  jitter?: number;
  /** An error retrying cannot help: thrown at once. Default: none is. */
  isPermanent?: (error: unknown) => boolean;
  /** A wait the error itself asks for (e.g. `Retry-After`); the backoff never goes below it. */
  retryAfterMs?: (error: unknown) => number | undefined;
  /** Called before each wait (for logs and tests). */
  onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
  /** Replaces the clock and the dice (for tests). */
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The wait before retry number `attempt + 1` (attempt 0 is the first failure). */
export function backoffMs(
  attempt: number,
  options: Pick<RetryOptions, "baseMs" | "maxMs" | "jitter">,
  random: () => number = Math.random,
  floorMs = 0,
): number {
  const base = options.baseMs ?? 50;
  const max = options.maxMs ?? 2000;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const backoff = Math.max(floorMs, Math.min(max, base * 2 ** attempt));
  return backoff * (1 - jitter + jitter * random());
}

/**
 * Runs `operation` until it succeeds, waiting a growing, jittered backoff after each failure. It
 * gives up, throwing the error the operation threw last, when the error is permanent, when the
 * signal is aborted, or when the next wait would end at or past the deadline. A wait is never cut
 * short: an attempt that started always runs to its end.
 */
export async function retryUntilDeadline<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? sleepFor;
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (options.isPermanent?.(error)) throw error;
      const wait = backoffMs(attempt, options, random, options.retryAfterMs?.(error) ?? 0);
      if (options.signal?.aborted || now() + wait >= options.deadline) throw error;
      options.onRetry?.(error, attempt, wait);
      await sleep(wait);
    }
  }
}
