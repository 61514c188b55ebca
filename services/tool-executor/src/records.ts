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
  // renewed while the claim's executor lives, and the silence after which it is taken to have
  // stopped (see `IdempotencyStore`); NULL on claims of executors that did not renew them, which
  // keep the age rule alone
  "ALTER TABLE tool_calls ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz",
  "ALTER TABLE tool_calls ADD COLUMN IF NOT EXISTS silence_ms integer",
];

/** How often a live executor renews the claims it holds, by default. */
export const CLAIM_HEARTBEAT_MS = 1000;

/** How long a claim that could not be let go (the store away) is tried again in the background. */
const LET_GO_FOR_MS = 10 * 60_000;

export type Claim =
  /** `resent`: taken over from a stale claim whose outcome was unknown (`takeOverStale`). */
  | { kind: "claimed"; resent?: true }
  | { kind: "done"; reply: ToolExecReply }
  | { kind: "running" }
  /** Claimed long ago and never finished: its executor stopped, before or after it acted. */
  | { kind: "unknown" };

/**
 * Idempotency records of side-effecting calls, shared by every replica.
 *
 * Heartbeat: while this store holds claims (from the claim until the call's record or release is
 * stored), it renews them all every `heartbeatMs` in one statement. A claim whose renewals stopped
 * for `silenceMs` (three beats and a second, written with the claim, so executors configured
 * differently agree) belongs to an executor that stopped, so a retry learns
 * it at once instead of after the tool's whole stale time; a claim still renewed is never stale,
 * however long its record takes to reach the store.
 */
export class IdempotencyStore {
  /** Releases and records of claims made while the store was away, tried again until it answers. */
  private readonly later = new Map<string, NodeJS.Timeout | undefined>();
  /** Claims this store holds and renews, by tenant and key. */
  private readonly held = new Map<string, { tenant: string; key: string; token: string }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private beating = false;
  /** After this long without a renewal, a claim's executor is taken to have stopped. */
  readonly silenceMs: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlSeconds: number,
    private readonly heartbeatMs = CLAIM_HEARTBEAT_MS,
  ) {
    this.silenceMs = 3 * heartbeatMs + 1000;
  }

  static async create(
    pool: pg.Pool,
    ttlSeconds: number,
    heartbeatMs = CLAIM_HEARTBEAT_MS,
  ): Promise<IdempotencyStore> {
    await migrate(pool, "tool-executor", MIGRATIONS);
    return new IdempotencyStore(pool, ttlSeconds, heartbeatMs);
  }

  /** Claims held (renewed) by this store now. */
  get holding(): number {
    return this.held.size;
  }

  /**
   * Claims the key, or tells what an earlier call left. A stale claim (its executor stopped
   * renewing it, see the class; or, for a claim never renewed, older than `staleAfterMs`) is not
   * taken over: its executor stopped while it held it, perhaps after the
   * effect was made, so making the call again could repeat the effect (`unknown`). Only an expired
   * record (past the idempotency TTL) is claimed anew; with `takeOverStale` (the tool's receiver
   * applies each idempotency key once, so sending the call again cannot repeat its effect) a stale
   * claim is taken over too (`claimed`, `resent`), by one caller only, and never before it is
   * `staleAfterMs` old (the first send must be over before the second goes).
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
        `INSERT INTO tool_calls (tenant, idempotency_key, tool, expires_at, claim_token, heartbeat_at, silence_ms)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, now(), $6)
         ON CONFLICT (tenant, idempotency_key) DO UPDATE
           SET claimed_at = now(), status = 'running', reply = NULL, finished_at = NULL,
             expires_at = EXCLUDED.expires_at, claim_token = EXCLUDED.claim_token, heartbeat_at = now(),
             silence_ms = EXCLUDED.silence_ms
           WHERE tool_calls.expires_at < now()
         RETURNING status`,
        [tenant, key, tool, this.ttlSeconds, token, this.silenceMs],
      );
    } catch (error) {
      await this.letGo(tenant, key, token);
      throw error;
    }
    if (inserted.rowCount === 1) {
      this.hold(tenant, key, token);
      return { kind: "claimed" };
    }
    // the age rule of a claim never renewed, and the least age of a claim taken over (seconds)
    const staleness = [staleAfterMs / 1000, takeOverStale ? staleAfterMs / 1000 : 0];
    const existing = await this.pool.query<{ status: string; reply: unknown; stale: boolean }>(
      `SELECT status, reply, ${STALE} AS stale FROM tool_calls WHERE tenant = $1 AND idempotency_key = $2`,
      [tenant, key, ...staleness],
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
          `UPDATE tool_calls SET claimed_at = now(), heartbeat_at = now(), silence_ms = $6, claim_token = $5
           WHERE tenant = $1 AND idempotency_key = $2 AND status = 'running' AND ${STALE}`,
          [tenant, key, ...staleness, token, this.silenceMs],
        );
      } catch (error) {
        // as a failed claim: it may have been stored, and this call has not acted
        await this.letGo(tenant, key, token);
        throw error;
      }
      if (taken.rowCount === 1) {
        this.hold(tenant, key, token);
        return { kind: "claimed", resent: true };
      }
    }
    return { kind: "running" };
  }

  async complete(tenant: string, key: string, reply: ToolExecReply): Promise<void> {
    await this.pool.query(
      `UPDATE tool_calls SET status = 'done', reply = $3, finished_at = now() WHERE tenant = $1 AND idempotency_key = $2`,
      [tenant, key, JSON.stringify(reply)],
    );
    this.held.delete(heldId(tenant, key));
    this.stopBeatingIfIdle();
  }

  /** A call that failed before acting may be tried again: its claim (`token`) is dropped. */
  async release(tenant: string, key: string, token: string): Promise<void> {
    await this.pool.query(
      `DELETE FROM tool_calls
       WHERE tenant = $1 AND idempotency_key = $2 AND status = 'running' AND claim_token = $3`,
      [tenant, key, token],
    );
    this.unhold(tenant, key, token);
  }

  private hold(tenant: string, key: string, token: string): void {
    this.held.set(heldId(tenant, key), { tenant, key, token });
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  private unhold(tenant: string, key: string, token: string): void {
    const id = heldId(tenant, key);
    if (this.held.get(id)?.token === token) this.held.delete(id);
    this.stopBeatingIfIdle();
  }

  private stopBeatingIfIdle(): void {
    if (this.held.size > 0 || !this.heartbeat) return;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Renews every claim held, in one statement; a renewal that fails is simply the next one's. */
  private beat(): void {
    if (this.beating || this.held.size === 0) return;
    this.beating = true;
    const claims = [...this.held.values()];
    this.pool
      .query(
        `UPDATE tool_calls t SET heartbeat_at = now()
         FROM unnest($1::text[], $2::text[], $3::text[]) AS h(tenant, idempotency_key, claim_token)
         WHERE t.tenant = h.tenant AND t.idempotency_key = h.idempotency_key
           AND t.claim_token = h.claim_token AND t.status = 'running'`,
        [
          claims.map((claim) => claim.tenant),
          claims.map((claim) => claim.key),
          claims.map((claim) => claim.token),
        ],
      )
      .catch(() => undefined)
      .finally(() => {
        this.beating = false;
      });
  }

  /**
   * Releases a claim of a call that did not act, never failing: while the store is away the
   * release is tried again in the background (backoff to 2 s, for ten minutes), so the claim does
   * not go stale and turn a retry of the call into an `unknown` outcome. Resolves once the first
   * try is over, whatever its outcome.
   */
  letGo(tenant: string, key: string, token: string): Promise<void> {
    return this.untilStored(
      `release\u0000${tenant}\u0000${key}\u0000${token}`,
      () => this.release(tenant, key, token),
      () => this.unhold(tenant, key, token),
    ).then(() => undefined);
  }

  /**
   * Records the reply of a call that acted, never failing: while the store is away the record is
   * written in the background (as `letGo`), and a retry of the call meanwhile finds it `running`
   * and waits for it. Resolves once the first try is over: `true` when it was stored then.
   */
  completeSoon(tenant: string, key: string, reply: ToolExecReply): Promise<boolean> {
    const token = this.held.get(heldId(tenant, key))?.token;
    return this.untilStored(
      `done\u0000${tenant}\u0000${key}`,
      () => this.complete(tenant, key, reply),
      () => token !== undefined && this.unhold(tenant, key, token),
    );
  }

  /**
   * Writes `write` once now and, while it fails, again in the background for ten minutes; then
   * (or when closed first) `giveUp` stops renewing the claim, which goes stale.
   */
  private untilStored(id: string, write: () => Promise<void>, giveUp: () => void): Promise<boolean> {
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
            giveUp();
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
    this.held.clear();
    this.stopBeatingIfIdle();
  }
}

function heldId(tenant: string, key: string): string {
  return `${tenant}\u0000${key}`;
}

/**
 * Whether a running claim is stale: a renewed claim once its executor has been silent for the
 * silence it claimed with, and it is at least $4 seconds old; a claim never renewed once it is $3
 * seconds old.
 */
const STALE = `CASE WHEN heartbeat_at IS NULL OR silence_ms IS NULL THEN claimed_at < now() - make_interval(secs => $3)
    ELSE heartbeat_at < now() - make_interval(secs => silence_ms / 1000.0)
      AND claimed_at < now() - make_interval(secs => $4) END`;
