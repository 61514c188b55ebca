/**
 * Gathers items and hands them to `write` together, at most once every `intervalMs` (the
 * first item after a quiet interval at once), never two writes at a time. An item's promise
 * settles when the write that holds it has finished: resolved once it succeeded, rejected
 * with its error otherwise. A consumer that acknowledges a message only when its promise
 * resolves loses nothing if the process stops before the write.
 */
export class IntervalBatcher<T> {
  private waiting: Array<{ item: T; resolve: () => void; reject: (error: unknown) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private writing = false;
  private lastWrite = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** Items waiting for the next write. */
  get pending(): number {
    return this.waiting.length;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer || this.writing || this.waiting.length === 0) return;
    const wait = Math.max(0, this.lastWrite + this.intervalMs - performance.now());
    this.timer = setTimeout(() => void this.flush(), wait);
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.writing = true;
    this.lastWrite = performance.now();
    try {
      await this.write(batch.map((entry) => entry.item));
      for (const entry of batch) entry.resolve();
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    } finally {
      this.writing = false;
      this.schedule();
    }
  }
}
