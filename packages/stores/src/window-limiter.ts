import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { redisReady } from "./redis.js";

/**
 * One atomic round trip: a hold (a key whose life refuses everything), counters in time windows
 * (the current window's count plus, when sliding, the previous one's weighted by the share of it
 * still inside the window) and leases (sorted sets of holders scored by expiry on the Redis
 * clock, so replicas' clocks need not agree and a crashed holder stops counting once its lease
 * runs out). Nothing is taken unless every check passes; a
 * counter with nothing counted yet admits one take however large, so an oversized take is not
 * refused forever. Returns {-1, hold's PTTL} when held; {i, current, previous} when counter i
 * (1-based) is full; {counters + j, active} when lease j is; else {0, tightest counter (0: none),
 * its current, its previous}, counts before this take.
 * KEYS: the hold (when ARGV[7] is 1), then (current, previous) pairs, then lease keys.
 * ARGV: counters, leases, lease time (ms), weight of the previous window, counter TTL (ms), lease
 *       token, hold present (1 or 0), then (limit, amount) per counter, then the limit per lease.
 */
const TAKE_SCRIPT = `
local counters = tonumber(ARGV[1])
local leases = tonumber(ARGV[2])
local weight = tonumber(ARGV[4])
local base = tonumber(ARGV[7])
if base == 1 then
  local held = redis.call('PTTL', KEYS[1])
  if held > 0 then return {-1, held, 0} end
end
local tightest, tightestRoom, tightestCurrent, tightestPrevious = 0, 0, 0, 0
for i = 1, counters do
  local current = tonumber(redis.call('GET', KEYS[base + 2 * i - 1]) or '0')
  local previous = 0
  if weight > 0 then previous = tonumber(redis.call('GET', KEYS[base + 2 * i]) or '0') end
  local used = current + previous * weight
  local room = tonumber(ARGV[6 + 2 * i]) - (used + tonumber(ARGV[7 + 2 * i]))
  if used > 0 and room < 0 then
    return {i, current, previous}
  end
  if tightest == 0 or room < tightestRoom then
    tightest, tightestRoom, tightestCurrent, tightestPrevious = i, room, current, previous
  end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local expiry = now + tonumber(ARGV[3])
for j = 1, leases do
  local key = KEYS[base + 2 * counters + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local active = redis.call('ZCARD', key)
  if active + 1 > tonumber(ARGV[7 + 2 * counters + j]) then
    return {counters + j, active, 0}
  end
end
for i = 1, counters do
  redis.call('INCRBY', KEYS[base + 2 * i - 1], tonumber(ARGV[7 + 2 * i]))
  redis.call('PEXPIRE', KEYS[base + 2 * i - 1], tonumber(ARGV[5]))
end
for j = 1, leases do
  local key = KEYS[base + 2 * counters + j]
  redis.call('ZADD', key, expiry, ARGV[6])
  if redis.call('PTTL', key) < expiry - now + 60000 then redis.call('PEXPIRE', key, expiry - now + 60000) end
end
return {0, tightest, tightestCurrent, tightestPrevious}
`;

/** A counter in time windows: refused when this take would pass `limit` in the window. */
export interface WindowCount {
  /** The counter's key in a window (windows are numbered from the epoch). */
  key: (window: number) => string;
  limit: number;
  /** Added when every check passes (default 1). */
  amount?: number;
}

/** A lease: refused when `limit` holders are live; the holder counts until released or expired. */
export interface LeaseCount {
  key: string;
  limit: number;
}

export interface TakeRequest {
  counts?: readonly WindowCount[];
  leases?: readonly LeaseCount[];
  /** How long a lease is held when it is not given back (required with `leases`). */
  leaseMs?: number;
  /** A key set by `hold`: while it lives every take is refused. */
  hold?: string;
  /** The clock (epoch ms) the windows are read at; now by default. */
  now?: number;
}

/** A counter's figures before a take: the current window's count and the previous one's. */
export interface CounterFigures {
  /** 0-based index into `counts`. */
  index: number;
  current: number;
  previous: number;
}

export type TakeOutcome =
  | {
      taken: true;
      /** The counter with the least room left after this take (none without counters). */
      tightest: CounterFigures | undefined;
      /** Gives the leases back; resolves once they are (idempotent; never rejects). */
      release: () => Promise<void>;
      /** Whether Redis counted it (false: this process did). */
      shared: boolean;
    }
  | { taken: false; refusedBy: "hold"; waitMs: number }
  | ({ taken: false; refusedBy: "count" } & CounterFigures)
  | { taken: false; refusedBy: "lease"; index: number; active: number };

type ScriptReply = [number, number, number] | [number, number, number, number];
type TakeCommand = (keys: string[], ...args: (string | number)[]) => Promise<ScriptReply>;

const COMMAND = "windowLimiterTake";
const LOCAL_SWEEP_AT = 100_000;

/**
 * Counters in time windows (fixed, or sliding over the previous window), leases and holds, shared
 * by every replica through Redis, all checked and taken in one scripted round trip; per-process
 * counters, leases and holds while Redis is down or fails. A hold is also kept in this process,
 * which honours it even when Redis forgets it.
 */
export class WindowLimiter {
  /** The length of a window (a minute by default). */
  readonly windowMs: number;
  private readonly sliding: boolean;
  private readonly takeCommand: TakeCommand;
  private readonly localCounts = new Map<string, { window: number; count: number }>();
  private readonly localLeases = new Map<string, Map<string, number>>();
  private readonly localHolds = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    options: { windowMs?: number; sliding?: boolean } = {},
  ) {
    const windowMs = options.windowMs ?? 60_000;
    if (!Number.isSafeInteger(windowMs) || windowMs <= 0)
      throw new RangeError(`a window is a whole number of ms above 0, not ${windowMs}`);
    this.windowMs = windowMs;
    this.sliding = options.sliding ?? false;
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: TAKE_SCRIPT });
    const command = (redis as unknown as Record<string, unknown>)[COMMAND] as (
      numberOfKeys: number,
      ...args: (string | number)[]
    ) => Promise<ScriptReply>;
    this.takeCommand = (keys, ...args) => command.call(redis, keys.length, ...keys, ...args);
  }

  /** The window `now` falls in and how far into it (0 to 1). */
  windowAt(now: number): { window: number; fraction: number } {
    const window = Math.floor(now / this.windowMs);
    return { window, fraction: (now - window * this.windowMs) / this.windowMs };
  }

  /** Checks every counter, lease and the hold, and takes them all or none. */
  async take(request: TakeRequest): Promise<TakeOutcome> {
    const counts = request.counts ?? [];
    const leases = request.leases ?? [];
    const now = request.now ?? Date.now();
    if (leases.length > 0 && (request.leaseMs === undefined || request.leaseMs < 0))
      throw new RangeError("a take with leases needs leaseMs (0 or more)");
    for (const count of counts) {
      const amount = count.amount ?? 1;
      if (!(count.limit > 0) || !Number.isSafeInteger(amount) || amount < 0)
        throw new RangeError(
          `a counter's limit is above 0 and its amount a whole number from 0, not ${count.limit} and ${amount}`,
        );
    }
    if (request.hold !== undefined) {
      const waitMs = this.heldFor(request.hold, now);
      if (waitMs > 0) return { taken: false, refusedBy: "hold", waitMs };
    }
    const { window, fraction } = this.windowAt(now);
    const weight = this.sliding ? 1 - fraction : 0;
    const token = randomUUID();
    const expiry = now + (request.leaseMs ?? 0);
    let reply: ScriptReply | undefined;
    if (redisReady(this.redis)) {
      try {
        const keys = [
          ...(request.hold !== undefined ? [request.hold] : []),
          ...counts.flatMap((count) => [count.key(window), count.key(window - 1)]),
          ...leases.map((lease) => lease.key),
        ];
        const result = await this.takeCommand(
          keys,
          counts.length,
          leases.length,
          Math.ceil(request.leaseMs ?? 0),
          weight,
          2 * this.windowMs + 5000,
          token,
          request.hold !== undefined ? 1 : 0,
          ...counts.flatMap((count) => [count.limit, count.amount ?? 1]),
          ...leases.map((lease) => lease.limit),
        );
        reply = [Number(result[0]), Number(result[1]), Number(result[2]), Number(result[3] ?? 0)];
      } catch {
        reply = undefined; // Redis failed mid-way: count in this process
      }
    }
    const shared = reply !== undefined;
    reply ??= this.takeLocally(counts, leases, window, weight, now, token, expiry);
    const [outcome, first = 0, second = 0, third = 0] = reply;
    if (outcome === -1) return { taken: false, refusedBy: "hold", waitMs: first };
    if (outcome === 0) {
      return {
        taken: true,
        tightest: first > 0 ? { index: first - 1, current: second, previous: third } : undefined,
        release: leases.length === 0 ? async () => undefined : this.releaser(leases, token, shared),
        shared,
      };
    }
    if (outcome <= counts.length)
      return { taken: false, refusedBy: "count", index: outcome - 1, current: first, previous: second };
    return { taken: false, refusedBy: "lease", index: outcome - 1 - counts.length, active: first };
  }

  /** How long this process still holds `key` (0: not held here; Redis may still hold it). */
  heldFor(key: string, now = Date.now()): number {
    const until = this.localHolds.get(key);
    if (until === undefined) return 0;
    if (until > now) return until - now;
    this.localHolds.delete(key);
    return 0;
  }

  /** Adds `amount` (negative: takes back) to a counter in the window of `now`. */
  async add(count: Pick<WindowCount, "key">, amount: number, now = Date.now()): Promise<void> {
    if (amount === 0) return;
    const { window } = this.windowAt(now);
    const key = count.key(window);
    if (redisReady(this.redis)) {
      await this.redis.incrby(key, amount).catch(() => undefined);
      return;
    }
    const entry = this.localCounts.get(key);
    this.localCounts.set(key, { window, count: (entry?.count ?? 0) + amount });
  }

  /**
   * Refuses every take naming `key` as its hold for `ms`, in this process at once and, through
   * Redis, in every replica; never shortens a longer hold already set.
   */
  async hold(key: string, ms: number, now = Date.now()): Promise<void> {
    if (!(ms > 0)) throw new RangeError(`a hold lasts more than 0 ms, not ${ms}`);
    const span = Math.ceil(ms);
    const until = now + span;
    if ((this.localHolds.get(key) ?? 0) < until) this.localHolds.set(key, until);
    if (!redisReady(this.redis)) return;
    await this.redis
      .eval(
        "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end return 1",
        1,
        key,
        span,
      )
      .catch(() => undefined);
  }

  private releaser(leases: readonly LeaseCount[], token: string, shared: boolean): () => Promise<void> {
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      if (shared && redisReady(this.redis)) {
        const pipeline = this.redis.pipeline();
        for (const lease of leases) pipeline.zrem(lease.key, token);
        await pipeline.exec().catch(() => undefined);
      } else {
        // a lease taken in Redis expires there on its own if the release cannot reach it
        for (const lease of leases) {
          const tokens = this.localLeases.get(lease.key);
          tokens?.delete(token);
          if (tokens?.size === 0) this.localLeases.delete(lease.key);
        }
      }
    };
  }

  private takeLocally(
    counts: readonly WindowCount[],
    leases: readonly LeaseCount[],
    window: number,
    weight: number,
    now: number,
    token: string,
    expiry: number,
  ): ScriptReply {
    if (this.localCounts.size > LOCAL_SWEEP_AT) {
      for (const [key, entry] of this.localCounts)
        if (entry.window < window - 1) this.localCounts.delete(key);
    }
    const figures = counts.map((count) => ({
      current: this.localCounts.get(count.key(window))?.count ?? 0,
      previous: weight > 0 ? (this.localCounts.get(count.key(window - 1))?.count ?? 0) : 0,
    }));
    let tightest: ScriptReply = [0, 0, 0, 0];
    let tightestRoom = Number.POSITIVE_INFINITY;
    for (const [index, count] of counts.entries()) {
      const { current, previous } = figures[index]!;
      const used = current + previous * weight;
      const room = count.limit - (used + (count.amount ?? 1));
      if (used > 0 && room < 0) return [index + 1, current, previous];
      if (room < tightestRoom) {
        tightestRoom = room;
        tightest = [0, index + 1, current, previous];
      }
    }
    const held = leases.map((lease) => {
      const tokens = this.localLeases.get(lease.key) ?? new Map<string, number>();
      for (const [heldToken, until] of tokens) if (until <= now) tokens.delete(heldToken);
      this.localLeases.set(lease.key, tokens);
      return tokens;
    });
    for (const [index, lease] of leases.entries()) {
      const size = held[index]!.size;
      if (size + 1 > lease.limit) return [counts.length + index + 1, size, 0];
    }
    for (const [index, count] of counts.entries()) {
      const key = count.key(window);
      this.localCounts.set(key, { window, count: figures[index]!.current + (count.amount ?? 1) });
    }
    for (const tokens of held) tokens.set(token, expiry);
    return tightest;
  }
}
