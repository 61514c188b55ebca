import { ToolExecReply } from "@agent-runtime/contracts";
import { migrate } from "@agent-runtime/stores";
import type pg from "pg";

export const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS tool_calls (
     tenant text NOT NULL,
     idempotency_key text NOT NULL,
     tool text NOT NULL,
     status text NOT NULL DEFAULT 'running',
     reply jsonb,
     claimed_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz,
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant, idempotency_key)
   )`,
  "CREATE INDEX IF NOT EXISTS tool_calls_expires ON tool_calls (expires_at)",
  // who holds a running claim: a claim is let go only by the call that made it
  "ALTER TABLE tool_calls ADD COLUMN IF NOT EXISTS claim_token text",
];

/** How long a claim that could not be let go (the store away) is tried again in the background. */
const LET_GO_FOR_MS = 10 * 60_000;

export type Claim =
  /** `resent`: taken over from a stale claim whose outcome was unknown (`takeOverStale`). */
  | { kind: "claimed"; resent?: true }
  | { kind: "done"; reply: ToolExecReply }
  | { kind: "running" }
  /** Claimed long ago and never finished: its executor stopped, before or after it acted. */
  | { kind: "unknown" };

/** Idempotency records of side-effecting calls, shared by every replica. */
export class IdempotencyStore {
  /** Releases and records of claims made while the store was away, tried again until it answers. */
  private readonly later = new Map<string, NodeJS.Timeout | undefined>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlSeconds: number,
  ) {}

  static async create(pool: pg.Pool, ttlSeconds: number): Promise<IdempotencyStore> {
    await migrate(pool, "tool-executor", MIGRATIONS);
    return new IdempotencyStore(pool, ttlSeconds);
  }

  /**
   * Claims the key, or tells what an earlier call left. A claim older than `staleAfterMs` that
   * never finished is not taken over: its executor stopped while it held it, perhaps after the
   * effect was made, so making the call again could repeat the effect (`unknown`). Only an expired
   * record (past the idempotency TTL) is claimed anew; with `takeOverStale` (the tool's receiver
   * applies each idempotency key once, so sending the call again cannot repeat its effect) a stale
   * claim is taken over too (`claimed`, `resent`), by one caller only.
   *
   * `token` names this claim, so only its caller lets it go. A claim that fails may still have
   * been stored (the store committed it and went away before answering): the call has not acted,
   * so the claim is let go (`letGo`), in the background until the store answers; meanwhile a
   * retry finds it `running` and waits, instead of finding it stale later and giving up.
   */
  async claim(
    tenant: string,
    key: string,
    tool: string,
    staleAfterMs: number,
    token: string,
    takeOverStale = false,
  ): Promise<Claim> {
    let inserted: pg.QueryResult;
    try {
      inserted = await this.pool.query(
        `INSERT INTO tool_calls (tenant, idempotency_key, tool, expires_at, claim_token)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5)
         ON CONFLICT (tenant, idempotency_key) DO UPDATE
           SET claimed_at = now(), status = 'running', reply = NULL, finished_at = NULL,
             expires_at = EXCLUDED.expires_at, claim_token = EXCLUDED.claim_token
           WHERE tool_calls.expires_at < now()
         RETURNING status`,
        [tenant, key, tool, this.ttlSeconds, token],
      );
    } catch (error) {
      await this.letGo(tenant, key, token);
      throw error;
    }
    if (inserted.rowCount === 1) return { kind: "claimed" };
    const existing = await this.pool.query<{ status: string; reply: unknown; stale: boolean }>(
      `SELECT status, reply, claimed_at < now() - make_interval(secs => $3) AS stale
       FROM tool_calls WHERE tenant = $1 AND idempotency_key = $2`,
      [tenant, key, staleAfterMs / 1000],
    );
    const row = existing.rows[0];
    if (row?.status === "done") {
      const parsed = ToolExecReply.safeParse(row.reply);
      if (parsed.success) return { kind: "done", reply: parsed.data };
    }
    if (row?.status === "running" && row.stale) {
      if (!takeOverStale) return { kind: "unknown" };
      // only while it is still stale: of two callers taking it over at once, one gets it
      let taken: pg.QueryResult;
      try {
        taken = await this.pool.query(
          `UPDATE tool_calls SET claimed_at = now(), claim_token = $3
           WHERE tenant = $1 AND idempotency_key = $2 AND status = 'running'
             AND claimed_at < now() - make_interval(secs => $4)`,
          [tenant, key, token, staleAfterMs / 1000],
        );
      } catch (error) {
        // as a failed claim: it may have been stored, and this call has not acted
        await this.letGo(tenant, key, token);
        throw error;
      }
      if (taken.rowCount === 1) return { kind: "claimed", resent: true };
    }
    return { kind: "running" };
  }

  async complete(tenant: string, key: string, reply: ToolExecReply): Promise<void> {
    await this.pool.query(
      `UPDATE tool_calls SET status = 'done', reply = $3, finished_at = now() WHERE tenant = $1 AND idempotency_key = $2`,
      [tenant, key, JSON.stringify(reply)],
    );
  }

  /** A call that failed before acting may be tried again: its claim (`token`) is dropped. */
  async release(tenant: string, key: string, token: string): Promise<void> {
    await this.pool.query(
      `DELETE FROM tool_calls
       WHERE tenant = $1 AND idempotency_key = $2 AND status = 'running' AND claim_token = $3`,
      [tenant, key, token],
    );
  }

  /**
   * Releases a claim of a call that did not act, never failing: while the store is away the
   * release is tried again in the background (backoff to 2 s, for ten minutes), so the claim does
   * not go stale and turn a retry of the call into an `unknown` outcome. Resolves once the first
   * try is over, whatever its outcome.
   */
  letGo(tenant: string, key: string, token: string): Promise<void> {
    return this.untilStored(`release\u0000${tenant}\u0000${key}\u0000${token}`, () =>
      this.release(tenant, key, token),
    ).then(() => undefined);
  }

  /**
   * Records the reply of a call that acted, never failing: while the store is away the record is
   * written in the background (as `letGo`), and a retry of the call meanwhile finds it `running`
   * and waits for it. Resolves once the first try is over: `true` when it was stored then.
   */
  completeSoon(tenant: string, key: string, reply: ToolExecReply): Promise<boolean> {
    return this.untilStored(`done\u0000${tenant}\u0000${key}`, () => this.complete(tenant, key, reply));
  }

  /** Writes `write` once now and, while it fails, again in the background for ten minutes. */
  private untilStored(id: string, write: () => Promise<void>): Promise<boolean> {
    if (this.later.has(id)) return Promise.resolve(false);
    const giveUpAt = Date.now() + LET_GO_FOR_MS;
    const attempt = (delayMs: number): Promise<boolean> =>
      write().then(
        () => {
          this.later.delete(id);
          return true;
        },
        () => {
          // closed meanwhile, or tried for long enough: the claim goes stale
          if (!this.later.has(id) || Date.now() >= giveUpAt) {
            this.later.delete(id);
            return false;
          }
          const timer = setTimeout(() => void attempt(Math.min(2000, delayMs * 2)), delayMs);
          timer.unref();
          this.later.set(id, timer);
          return false;
        },
      );
    this.later.set(id, undefined);
    return attempt(100);
  }

  /** Releases and records waiting for the store (it was away when they were made). */
  get waitingForStore(): number {
    return this.later.size;
  }

  /**
   * Shutting down: gives the releases and records waiting for the store up to `limitMs` to be
   * written, then stops trying (`close`).
   */
  async settle(limitMs: number): Promise<void> {
    const until = Date.now() + limitMs;
    while (this.later.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    this.close();
  }

  /** Stops trying (shutting down): a claim not let go or not recorded goes stale. */
  close(): void {
    for (const timer of this.later.values()) clearTimeout(timer);
    this.later.clear();
  }
}
