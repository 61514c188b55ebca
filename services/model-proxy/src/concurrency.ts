import type { Priority } from "@agent-runtime/contracts";

interface Waiter {
  grant: () => void;
  refuse: () => void;
}

/**
 * A bound on concurrent calls per provider in this process, in two lanes.
 * Interactive calls may use every slot and are served before any waiting
 * batch call; batch calls may hold at most `max - reserved` slots, so a
 * batch flood never takes the last ones. Within a lane waiters are FIFO. A
 * call waits for a slot up to a limit, then gives up so the caller can fail
 * over instead of queueing behind a slow provider.
 */
export class ConcurrencyGate {
  private active = 0;
  private activeBatch = 0;
  private closed = false;
  private readonly waiting: Record<Priority, Waiter[]> = { interactive: [], batch: [] };
  /** Slots batch calls may hold at once. */
  readonly batchLimit: number;

  constructor(
    private readonly max: number,
    reserved = 0,
  ) {
    this.batchLimit = Math.max(1, max - reserved);
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.interactive.length + this.waiting.batch.length;
  }

  queuedIn(priority: Priority): number {
    return this.waiting[priority].length;
  }

  /**
   * Resolves true once a slot is held (call `release(priority)` after), false
   * when `waitMs` passed first; rejects when `signal` aborts while waiting.
   */
  acquire(priority: Priority, waitMs: number, signal: AbortSignal): Promise<boolean> {
    // a new call never overtakes a waiter of its own lane, nor a batch one any interactive waiter
    const ahead =
      priority === "interactive"
        ? this.waiting.interactive.length
        : this.waiting.interactive.length + this.waiting.batch.length;
    if (ahead === 0 && this.hasRoomFor(priority)) {
      this.take(priority);
      return Promise.resolve(true);
    }
    if (waitMs <= 0 || (this.closed && priority === "batch")) return Promise.resolve(false);
    if (signal.aborted) return Promise.reject(signal.reason);
    const queue = this.waiting[priority];
    return new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(true);
        },
        refuse: () => {
          cleanup();
          resolve(false);
        },
      };
      const drop = () => {
        const index = queue.indexOf(waiter);
        if (index >= 0) queue.splice(index, 1);
      };
      const timer = setTimeout(() => {
        drop();
        cleanup();
        resolve(false);
      }, waitMs);
      const onAbort = () => {
        drop();
        cleanup();
        reject(signal.reason);
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Gives back a slot taken in `priority`'s lane; the next waiter (interactive first) gets it. */
  release(priority: Priority): void {
    this.active = Math.max(0, this.active - 1);
    if (priority === "batch") this.activeBatch = Math.max(0, this.activeBatch - 1);
    this.dispatch();
  }

  /**
   * Shutting down: batch calls (whose waits may last until their deadline)
   * stop waiting and new ones take only a free slot. Interactive waits are
   * short and go on.
   */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiting.batch.splice(0)) waiter.refuse();
  }

  private hasRoomFor(priority: Priority): boolean {
    return this.active < this.max && (priority === "interactive" || this.activeBatch < this.batchLimit);
  }

  private take(priority: Priority): void {
    this.active++;
    if (priority === "batch") this.activeBatch++;
  }

  private dispatch(): void {
    for (;;) {
      const lane: Priority | undefined =
        this.waiting.interactive.length > 0
          ? "interactive"
          : this.waiting.batch.length > 0
            ? "batch"
            : undefined;
      if (!lane || !this.hasRoomFor(lane)) return;
      const next = this.waiting[lane].shift()!;
      this.take(lane);
      next.grant();
    }
  }
}
