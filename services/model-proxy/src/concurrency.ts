/**
 * A bound on concurrent calls per provider in this process: a call waits
 * (FIFO) for a free slot up to a limit, then gives up so the caller can fail
 * over instead of queueing behind a slow provider.
 */
export class ConcurrencyGate {
  private active = 0;
  private readonly waiters: Array<{ grant: () => void }> = [];

  constructor(private readonly max: number) {}

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves true once a slot is held (call `release()` after), false when `waitMs` passed first. */
  acquire(waitMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.active < this.max && this.waiters.length === 0) {
      this.active++;
      return Promise.resolve(true);
    }
    if (waitMs <= 0) return Promise.resolve(false);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<boolean>((resolve, reject) => {
      const waiter = {
        grant: () => {
          cleanup();
          resolve(true);
        },
      };
      const drop = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
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
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    // the slot passes straight to the next waiter
    if (next) next.grant();
    else this.active = Math.max(0, this.active - 1);
  }
}
