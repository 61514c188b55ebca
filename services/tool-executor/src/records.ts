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
];

export type Claim =
  | { kind: "claimed" }
  | { kind: "done"; reply: ToolExecReply }
  | { kind: "running" }
  /** Claimed long ago and never finished: its executor stopped, before or after it acted. */
  | { kind: "unknown" };

/** Idempotency records of side-effecting calls, shared by every replica. */
export class IdempotencyStore {
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
   * record (past the idempotency TTL) is claimed anew.
   */
  async claim(tenant: string, key: string, tool: string, staleAfterMs: number): Promise<Claim> {
    const inserted = await this.pool.query(
      `INSERT INTO tool_calls (tenant, idempotency_key, tool, expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       ON CONFLICT (tenant, idempotency_key) DO UPDATE
         SET claimed_at = now(), status = 'running', reply = NULL, finished_at = NULL,
           expires_at = EXCLUDED.expires_at
         WHERE tool_calls.expires_at < now()
       RETURNING status`,
      [tenant, key, tool, this.ttlSeconds],
    );
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
    if (row?.status === "running" && row.stale) return { kind: "unknown" };
    return { kind: "running" };
  }

  async complete(tenant: string, key: string, reply: ToolExecReply): Promise<void> {
    await this.pool.query(
      `UPDATE tool_calls SET status = 'done', reply = $3, finished_at = now() WHERE tenant = $1 AND idempotency_key = $2`,
      [tenant, key, JSON.stringify(reply)],
    );
  }

  /** A call that failed before acting may be tried again. */
  async release(tenant: string, key: string): Promise<void> {
    await this.pool.query(
      "DELETE FROM tool_calls WHERE tenant = $1 AND idempotency_key = $2 AND status = 'running'",
      [tenant, key],
    );
  }
}
