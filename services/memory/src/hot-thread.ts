import { ChatMessage } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";
import { z } from "zod";

export const HotEntry = z.object({
  id: z.string(),
  seq: z.number(),
  message: ChatMessage,
  tokens: z.number(),
});
export type HotEntry = z.infer<typeof HotEntry>;

export const ThreadState = z.object({
  found: z.boolean(),
  summary: z.string().nullable(),
  summaryTokens: z.number(),
  /** Newest last; only messages after the summary, at most `hotTurns`. */
  messages: z.array(HotEntry),
  /** Messages after the summary that are older than the window (not summarised yet). */
  older: z.number().default(0),
});
export type ThreadState = z.infer<typeof ThreadState>;

const STATE_TTL_SECONDS = 3600;
/** Outlives any context build that could race an append; holds only a counter. */
const VERSION_TTL_SECONDS = 120;

/** Caches a state read from Postgres unless the thread changed since the reader looked. */
const FILL_SCRIPT = `
local version = redis.call("GET", KEYS[2]) or ""
if version ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "EX", tonumber(ARGV[3]))
return 1
`;

/** Bumps the version; adds new messages to an existing copy (deduplicated by seq), keeping the newest. */
const EXTEND_SCRIPT = `
redis.call("INCR", KEYS[2])
redis.call("EXPIRE", KEYS[2], tonumber(ARGV[3]))
local current = redis.call("GET", KEYS[1])
if not current then return 0 end
local state = cjson.decode(current)
local present = {}
for _, m in ipairs(state.messages) do present[m.seq] = true end
for _, m in ipairs(cjson.decode(ARGV[1])) do
  if not present[m.seq] then table.insert(state.messages, m) end
end
table.sort(state.messages, function(a, b) return a.seq < b.seq end)
local keep = tonumber(ARGV[2])
local older = tonumber(state.older) or 0
while #state.messages > keep do
  table.remove(state.messages, 1)
  older = older + 1
end
state.older = older
if #state.messages == 0 then state.messages = cjson.decode("[]") end
redis.call("SET", KEYS[1], cjson.encode(state), "KEEPTTL")
return 1
`;

const INVALIDATE_SCRIPT = `
redis.call("DEL", KEYS[1])
redis.call("INCR", KEYS[2])
redis.call("EXPIRE", KEYS[2], tonumber(ARGV[1]))
return 1
`;

/**
 * The hot copy of a thread in Redis: summary plus the newest turns, so a
 * context build costs one Redis round trip. A version counter bumped by
 * every change keeps a slow reader from caching a state older than an
 * append that raced it. Every failure degrades to Postgres.
 */
export class HotThreads {
  /** Threads changed while Redis was unreachable: their copies (if Redis kept them) are stale. */
  private readonly missed = new Set<string>();
  private missedOverflow = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly hotTurns: number,
  ) {
    redis.on("ready", () => void this.dropMissed());
  }

  private remember(tenant: string, threadId: string): void {
    if (this.missed.size >= 10_000) this.missedOverflow = true;
    else this.missed.add(JSON.stringify([tenant, threadId]));
  }

  private async dropMissed(): Promise<void> {
    const missed = [...this.missed];
    this.missed.clear();
    for (const entry of missed) {
      const [tenant, threadId] = JSON.parse(entry) as [string, string];
      await this.invalidate(tenant, threadId);
    }
    if (this.missedOverflow) {
      this.missedOverflow = false;
      const stream = this.redis.scanStream({ match: `${this.prefix}mem:thread:*`, count: 1000 });
      for await (const keys of stream as AsyncIterable<string[]>)
        if (keys.length > 0) await this.redis.del(...keys).catch(() => undefined);
    }
  }

  private keys(tenant: string, threadId: string): [string, string] {
    const key = `${this.prefix}mem:thread:${tenant}:${threadId}`;
    return [key, `${key}:version`];
  }

  /** The cached state (or undefined) and the version to pass to `fill`. */
  async read(tenant: string, threadId: string): Promise<{ state?: ThreadState; version: string | null }> {
    if (!redisReady(this.redis)) return { version: null };
    try {
      const [state, version] = await this.redis.mget(...this.keys(tenant, threadId));
      if (state) {
        const parsed = ThreadState.safeParse(JSON.parse(state));
        if (parsed.success) return { state: parsed.data, version: version ?? "" };
      }
      return { version: version ?? "" };
    } catch {
      return { version: null };
    }
  }

  async fill(tenant: string, threadId: string, version: string | null, state: ThreadState): Promise<void> {
    if (version === null || !state.found || !redisReady(this.redis)) return;
    await this.redis
      .eval(FILL_SCRIPT, 2, ...this.keys(tenant, threadId), version, JSON.stringify(state), STATE_TTL_SECONDS)
      .catch(() => undefined);
  }

  async extend(tenant: string, threadId: string, added: HotEntry[]): Promise<void> {
    if (!redisReady(this.redis)) {
      this.remember(tenant, threadId);
      return;
    }
    try {
      await this.redis.eval(
        EXTEND_SCRIPT,
        2,
        ...this.keys(tenant, threadId),
        JSON.stringify(added),
        String(this.hotTurns),
        String(VERSION_TTL_SECONDS),
      );
    } catch {
      await this.invalidate(tenant, threadId);
    }
  }

  /** Drops the copy; the next context rebuilds it from Postgres. */
  async invalidate(tenant: string, threadId: string): Promise<void> {
    if (!redisReady(this.redis)) {
      this.remember(tenant, threadId);
      return;
    }
    await this.redis
      .eval(INVALIDATE_SCRIPT, 2, ...this.keys(tenant, threadId), String(VERSION_TTL_SECONDS))
      .catch(() => this.remember(tenant, threadId));
  }
}
