import { reservedSlots } from "@agent-runtime/bus";
import type { Priority } from "@agent-runtime/contracts";
import { type Redis, WindowLimiter } from "@agent-runtime/stores";

/** Gives a slot back (never throws). */
export type ReleaseSlot = () => Promise<void>;

/** Extra time a holder keeps its slot past its call's own time limit (clock skew, release in flight). */
export const SLOT_GRACE_MS = 1000;
const MAX_POLL_MS = 250;

interface Ticket {
  wake: () => void;
}

/**
 * Concurrency slots per tool, shared by every replica through a Redis sorted
 * set of holders, each expiring with its call's time limit (per process when
 * Redis is down, with the same expiry), in two lanes (`meta.priority`):
 * interactive calls may fill every slot, batch calls at most `max` minus the
 * interactive reserve. An interactive call that finds no room is refused at
 * once; a batch call waits in line until `waitUntil`: the first in line of
 * this replica polls the holders (for other replicas' releases) and a local
 * release wakes it at once.
 */
export class ToolSlots {
  /** The holders of each tool's slots, leases that expire with their call's time limit. */
  private readonly leases: WindowLimiter;
  private readonly lines = new Map<string, Ticket[]>();
  private closed = false;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly interactiveReserve: number,
  ) {
    this.leases = new WindowLimiter(redis);
  }

  /** Slots a call of `priority` may fill of a tool's `max`. */
  limitFor(max: number, priority: Priority): number {
    return priority === "batch" ? max - reservedSlots(max, this.interactiveReserve) : max;
  }

  /** Batch calls waiting for a slot of `tool` in this replica. */
  waiting(tool: string): number {
    return this.lines.get(tool)?.length ?? 0;
  }

  /**
   * A slot of `tool`, held at most `holdMs` from when it is taken (then it counts no more, given
   * back or not), or undefined when its lane is full (batch: still full at `waitUntil`).
   */
  async take(
    tool: string,
    max: number,
    priority: Priority,
    waitUntil: number,
    holdMs: number,
  ): Promise<ReleaseSlot | undefined> {
    const limit = this.limitFor(max, priority);
    const hold = Math.max(1, Math.ceil(holdMs));
    const line = this.lines.get(tool);
    // a batch call does not overtake batch calls of this replica already in line
    if (priority === "interactive" || !line?.length) {
      const release = await this.tryTake(tool, limit, hold);
      if (release || priority === "interactive") return release;
    }
    if (this.closed || waitUntil <= Date.now()) return undefined;
    return this.waitInLine(tool, limit, waitUntil, hold);
  }

  /** Shutting down: batch calls in line give up at once, and none queue anew. */
  stopWaiting(): void {
    this.closed = true;
    for (const line of this.lines.values()) for (const ticket of line) ticket.wake();
  }

  private async waitInLine(
    tool: string,
    limit: number,
    waitUntil: number,
    holdMs: number,
  ): Promise<ReleaseSlot | undefined> {
    let line = this.lines.get(tool);
    if (!line) {
      line = [];
      this.lines.set(tool, line);
    }
    const ticket: Ticket = { wake: () => undefined };
    line.push(ticket);
    let pollMs = 10;
    try {
      for (;;) {
        const first = line[0] === ticket;
        if (first) {
          const release = await this.tryTake(tool, limit, holdMs);
          if (release) return release;
        }
        const left = waitUntil - Date.now();
        if (left <= 0 || this.closed) return undefined;
        // the first in line polls; the others sleep until they are first (or their time is up)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, first ? Math.min(pollMs, left) : left);
          ticket.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (first) pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
      }
    } finally {
      const index = line.indexOf(ticket);
      if (index >= 0) line.splice(index, 1);
      if (line.length === 0) this.lines.delete(tool);
      else if (index === 0) line[0]!.wake(); // the next in line takes over
    }
  }

  private async tryTake(tool: string, limit: number, holdMs: number): Promise<ReleaseSlot | undefined> {
    // a lane without slots (a batch lane inside the interactive reserve) never takes one
    if (limit <= 0) return undefined;
    const outcome = await this.leases.take({
      leases: [{ key: `${this.prefix}tslots:${tool}`, limit }],
      leaseMs: holdMs,
    });
    if (!outcome.taken) return undefined;
    return async () => {
      await outcome.release();
      this.wakeFirst(tool);
    };
  }

  private wakeFirst(tool: string): void {
    this.lines.get(tool)?.[0]?.wake();
  }
}
