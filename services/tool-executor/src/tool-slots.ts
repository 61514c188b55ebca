import { randomUUID } from "node:crypto";
import { reservedSlots } from "@agent-runtime/bus";
import type { Priority } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

/** Gives a slot back (never throws). */
export type ReleaseSlot = () => Promise<void>;

/**
 * Takes a slot when fewer than ARGV[1] holders are live. KEYS[1]: the tool's holders, a sorted set
 * of holder id → expiry (Redis clock, epoch ms). ARGV: the lane's limit, the holder id, how long
 * the holder may keep the slot (ms). Holders past their expiry (a crashed or stuck executor's) are
 * pruned first, so a slot nobody gives back frees itself when its holder's time is up; the key
 * lives as long as its longest holder. Returns 1 when taken.
 */
const TAKE = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local hold = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + hold, ARGV[2])
if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
return 1
`;

/** Extra time a holder keeps its slot past its call's own time limit (clock skew, release in flight). */
export const SLOT_GRACE_MS = 1000;
const MAX_POLL_MS = 250;

type SlotRedis = Redis & {
  toolSlotTake(key: string, limit: number, holder: string, holdMs: number): Promise<number>;
};

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
  private readonly redis: SlotRedis;
  /** Redis down: this process's holders per tool, holder id → expiry (epoch ms). */
  private readonly localHolders = new Map<string, Map<string, number>>();
  private readonly lines = new Map<string, Ticket[]>();
  private closed = false;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly interactiveReserve: number,
  ) {
    this.redis = redis as SlotRedis;
    if (!("toolSlotTake" in redis)) redis.defineCommand("toolSlotTake", { numberOfKeys: 1, lua: TAKE });
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
    const key = `${this.prefix}tslots:${tool}`;
    const holder = randomUUID();
    if (redisReady(this.redis)) {
      try {
        if ((await this.redis.toolSlotTake(key, limit, holder, holdMs)) !== 1) return undefined;
        return async () => {
          await this.redis.zrem(key, holder).catch(() => undefined);
          this.wakeFirst(tool);
        };
      } catch {
        // local fallback
      }
    }
    const now = Date.now();
    let holders = this.localHolders.get(tool);
    if (!holders) {
      holders = new Map();
      this.localHolders.set(tool, holders);
    }
    for (const [id, expiresAt] of holders) if (expiresAt <= now) holders.delete(id);
    if (holders.size >= limit) return undefined;
    holders.set(holder, now + holdMs);
    return async () => {
      const mine = this.localHolders.get(tool);
      mine?.delete(holder);
      if (mine?.size === 0) this.localHolders.delete(tool);
      this.wakeFirst(tool);
    };
  }

  private wakeFirst(tool: string): void {
    this.lines.get(tool)?.[0]?.wake();
  }
}
