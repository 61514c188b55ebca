import { reservedSlots } from "@agent-runtime/bus";
import type { Priority } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

/** Gives a slot back (never throws). */
export type ReleaseSlot = () => Promise<void>;

/**
 * Takes a slot when the count is under ARGV[1]. KEYS: the tool's counter.
 * ARGV: the lane's limit, counter TTL in seconds. Returns 1 when taken.
 */
const TAKE = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** Gives a slot back, never below zero (a counter lost with Redis restarts at 0). */
const GIVE = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`;

const COUNTER_TTL_SECONDS = 300;
const MAX_POLL_MS = 250;

type SlotRedis = Redis & {
  toolSlotTake(key: string, limit: number, ttlSeconds: number): Promise<number>;
  toolSlotGive(key: string): Promise<number>;
};

interface Ticket {
  wake: () => void;
}

/**
 * Concurrency slots per tool, shared by every replica through a Redis
 * counter (per process when Redis is down), in two lanes (`meta.priority`):
 * interactive calls may fill every slot, batch calls at most `max` minus the
 * interactive reserve. An interactive call that finds no room is refused at
 * once; a batch call waits in line until `waitUntil`: the first in line of
 * this replica polls the counter (for other replicas' releases) and a local
 * release wakes it at once.
 */
export class ToolSlots {
  private readonly redis: SlotRedis;
  private readonly localActive = new Map<string, number>();
  private readonly lines = new Map<string, Ticket[]>();
  private closed = false;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly interactiveReserve: number,
  ) {
    this.redis = redis as SlotRedis;
    if (!("toolSlotTake" in redis)) {
      redis.defineCommand("toolSlotTake", { numberOfKeys: 1, lua: TAKE });
      redis.defineCommand("toolSlotGive", { numberOfKeys: 1, lua: GIVE });
    }
  }

  /** Slots a call of `priority` may fill of a tool's `max`. */
  limitFor(max: number, priority: Priority): number {
    return priority === "batch" ? max - reservedSlots(max, this.interactiveReserve) : max;
  }

  /** Batch calls waiting for a slot of `tool` in this replica. */
  waiting(tool: string): number {
    return this.lines.get(tool)?.length ?? 0;
  }

  /** A slot of `tool`, or undefined when its lane is full (batch: still full at `waitUntil`). */
  async take(
    tool: string,
    max: number,
    priority: Priority,
    waitUntil: number,
  ): Promise<ReleaseSlot | undefined> {
    const limit = this.limitFor(max, priority);
    const line = this.lines.get(tool);
    // a batch call does not overtake batch calls of this replica already in line
    if (priority === "interactive" || !line?.length) {
      const release = await this.tryTake(tool, limit);
      if (release || priority === "interactive") return release;
    }
    if (this.closed || waitUntil <= Date.now()) return undefined;
    return this.waitInLine(tool, limit, waitUntil);
  }

  /** Shutting down: batch calls in line give up at once, and none queue anew. */
  stopWaiting(): void {
    this.closed = true;
    for (const line of this.lines.values()) for (const ticket of line) ticket.wake();
  }

  private async waitInLine(tool: string, limit: number, waitUntil: number): Promise<ReleaseSlot | undefined> {
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
          const release = await this.tryTake(tool, limit);
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

  private async tryTake(tool: string, limit: number): Promise<ReleaseSlot | undefined> {
    const key = `${this.prefix}tconc:${tool}`;
    if (redisReady(this.redis)) {
      try {
        if ((await this.redis.toolSlotTake(key, limit, COUNTER_TTL_SECONDS)) !== 1) return undefined;
        return async () => {
          await this.redis.toolSlotGive(key).catch(() => undefined);
          this.wakeFirst(tool);
        };
      } catch {
        // local fallback
      }
    }
    const active = this.localActive.get(tool) ?? 0;
    if (active >= limit) return undefined;
    this.localActive.set(tool, active + 1);
    return async () => {
      this.localActive.set(tool, Math.max(0, (this.localActive.get(tool) ?? 1) - 1));
      this.wakeFirst(tool);
    };
  }

  private wakeFirst(tool: string): void {
    this.lines.get(tool)?.[0]?.wake();
  }
}
