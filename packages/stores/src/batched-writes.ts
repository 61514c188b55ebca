export interface BatchedWritesOptions<E, R> {
  /** Writes entries in one go (one statement, one round trip); resolves with one result per entry, in order. */
  write: (entries: E[]) => Promise<R[]>;
  /** Entries of one key never share a batch: a later one waits for the next, so a key's entries land in order. */
  keyOf: (entry: E) => string;
  /** Whether an error is about an entry's data: the batch is then written again entry by entry, so only that entry fails. */
  isDataError: (error: unknown) => boolean;
  /** Entries per batch at most (256). */
  maxBatch?: number;
}

interface Pending<E, R> {
  entry: E;
  /** Epoch ms by which a batch must take it. */
  dueAt: number;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: entries added at once are written together, and while one batch is written the
 * next gathers, so N concurrent writers cost one write per batch, not N. An entry may also wait up
 * to `gatherMs` for others to join it; one that is due starts a batch at once and takes every
 * waiting entry along. A batch holds one entry per key. An entry whose data the store refuses fails
 * alone: a refused batch is written again entry by entry.
 */
export class BatchedWrites<E, R> {
  private queue: Pending<E, R>[] = [];
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  /** Writes made (batches, and single entries written again after a refused batch). */
  writes = 0;

  constructor(private readonly options: BatchedWritesOptions<E, R>) {}

  /** Resolves with the entry's result once the batch that took it is written. */
  add(entry: E, gatherMs = 0): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ entry, dueAt: Date.now() + gatherMs, resolve, reject });
      // entries added in the same tick share the first batch
      queueMicrotask(() => this.kick());
    });
  }

  /** Starts a batch when one is due and none is being written; otherwise waits for the earliest due. */
  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    const due = Math.min(...this.queue.map((pending) => pending.dueAt));
    const wait = due - Date.now();
    if (wait > 0) {
      if (due >= this.timerDue) return;
      clearTimeout(this.timer);
      this.timerDue = due;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.timerDue = Number.POSITIVE_INFINITY;
        this.kick();
      }, wait);
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    this.writing = true;
    void this.writeBatch(this.takeBatch()).finally(() => {
      this.writing = false;
      this.kick();
    });
  }

  /** The next batch: up to `maxBatch` entries in queue order, one per key (later ones stay queued). */
  private takeBatch(): Pending<E, R>[] {
    const maxBatch = this.options.maxBatch ?? 256;
    const batch: Pending<E, R>[] = [];
    const keys = new Set<string>();
    const rest: Pending<E, R>[] = [];
    for (const pending of this.queue) {
      const key = this.options.keyOf(pending.entry);
      if (batch.length < maxBatch && !keys.has(key)) {
        keys.add(key);
        batch.push(pending);
      } else {
        rest.push(pending);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async writeBatch(batch: Pending<E, R>[]): Promise<void> {
    try {
      const results = await this.write(batch.map((pending) => pending.entry));
      for (const [index, pending] of batch.entries()) pending.resolve(results[index]!);
    } catch (error) {
      if (batch.length === 1 || !this.options.isDataError(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // one entry spoiled the batch: each goes alone, so only that one fails
      for (const pending of batch) {
        try {
          const [result] = await this.write([pending.entry]);
          pending.resolve(result!);
        } catch (single) {
          pending.reject(single);
        }
      }
    }
  }

  private write(entries: E[]): Promise<R[]> {
    this.writes++;
    return this.options.write(entries);
  }
}
