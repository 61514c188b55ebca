import { randomUUID } from "node:crypto";
import { ToolExecReply } from "@agent-runtime/contracts";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdempotencyStore } from "./records.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const schema = `records_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
let admin: pg.Client;
let pool: pg.Pool;
let store: IdempotencyStore;

const waitFor = async (check: () => boolean, limitMs: number) => {
  const until = Date.now() + limitMs;
  while (!check() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  return check();
};

/** The reply of a call that acted, as its executor records it. */
const SHIPPED = ToolExecReply.parse({
  callId: "c1",
  name: "ship",
  status: "ok",
  content: '{"shipped":true}',
  latencyMs: 1,
});

/** Another session holds the key's row: every write of it waits, then fails on the lock timeout. */
async function lockRow(key: string): Promise<{ unlock(): Promise<void> }> {
  const blocker = new pg.Client({ connectionString: DATABASE_URL });
  await blocker.connect();
  await blocker.query("BEGIN");
  await blocker.query(
    `SELECT 1 FROM "${schema}".tool_calls WHERE tenant = 'acme' AND idempotency_key = $1 FOR UPDATE`,
    [key],
  );
  return {
    unlock: async () => {
      await blocker.query("ROLLBACK");
      await blocker.end();
    },
  };
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  // a statement waiting for a lock fails fast, as one would against a store that is away
  pool = new pg.Pool({
    connectionString: DATABASE_URL,
    options: `-c search_path=${schema} -c lock_timeout=100`,
  });
  store = await IdempotencyStore.create(pool, 3600);
});

afterAll(async () => {
  store?.close();
  await pool?.end();
  await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin?.end();
});

describe("idempotency records", () => {
  it("lets a claim go only by the token that made it", async () => {
    const key = `run_${randomUUID()}:0:0`;
    expect(await store.claim("acme", key, "ship", 60_000, "first")).toEqual({ kind: "claimed" });
    await store.release("acme", key, "someone-else");
    expect(await store.claim("acme", key, "ship", 60_000, "second")).toEqual({ kind: "running" });
    await store.release("acme", key, "first");
    expect(await store.claim("acme", key, "ship", 60_000, "third")).toEqual({ kind: "claimed" });
  });

  it("takes over a stale claim only when asked to, and for one caller only", async () => {
    const key = `run_${randomUUID()}:3:0`;
    // the executor that claimed it stopped two minutes ago (it renews nothing any more)
    const killed = new IdempotencyStore(pool, 3600);
    expect(await killed.claim("acme", key, "ship", 60_000, "killed")).toEqual({ kind: "claimed" });
    killed.close();
    await admin.query(
      `UPDATE "${schema}".tool_calls SET claimed_at = now() - interval '2 minutes',
         heartbeat_at = now() - interval '2 minutes' WHERE idempotency_key = $1`,
      [key],
    );
    expect(await store.claim("acme", key, "ship", 60_000, "cautious")).toEqual({ kind: "unknown" });
    const racing = await Promise.all(
      ["a", "b", "c"].map((token) => store.claim("acme", key, "ship", 60_000, token, true)),
    );
    expect(racing.filter((claim) => claim.kind === "claimed")).toEqual([{ kind: "claimed", resent: true }]);
    expect(racing.filter((claim) => claim.kind === "running")).toHaveLength(2);
    // the taken-over claim is fresh: not stale again until its own time is up
    expect(await store.claim("acme", key, "ship", 60_000, "d", true)).toEqual({ kind: "running" });
  });

  it("never takes a renewed claim for stale, however old; a claim no longer renewed is stale after its silence", async () => {
    const key = `run_${randomUUID()}:5:0`;
    // renews every 100 ms: silent for 1.3 s means stopped
    const holder = new IdempotencyStore(pool, 3600, 100);
    expect(holder.silenceMs).toBe(1300);
    expect(await holder.claim("acme", key, "ship", 500, "holder")).toEqual({ kind: "claimed" });
    expect(holder.holding).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1800));
    // older than its stale time (500 ms) and than the silence, but its executor lives
    expect(await store.claim("acme", key, "ship", 500, "retry")).toEqual({ kind: "running" });
    holder.close();
    expect(holder.holding).toBe(0);
    let claim = await store.claim("acme", key, "ship", 500, "retry");
    const until = Date.now() + 5000;
    while (claim.kind === "running" && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      claim = await store.claim("acme", key, "ship", 500, "retry");
    }
    expect(claim).toEqual({ kind: "unknown" });
  });

  it("a stopped executor's claim is known stale before the tool's stale time, but taken over only after it", async () => {
    const key = `run_${randomUUID()}:6:0`;
    const holder = new IdempotencyStore(pool, 3600, 100);
    expect(await holder.claim("acme", key, "ship", 60_000, "holder")).toEqual({ kind: "claimed" });
    holder.close();
    await new Promise((resolve) => setTimeout(resolve, 1800));
    // not sent again before the first send must be over (60 s), however silent its executor
    expect(await store.claim("acme", key, "ship", 60_000, "keyed", true)).toEqual({ kind: "running" });
    // a call that is never sent again learns at once that its outcome is unknown
    expect(await store.claim("acme", key, "ship", 60_000, "plain")).toEqual({ kind: "unknown" });
  });

  it("a claim its executor never renewed keeps the age rule alone", async () => {
    const key = `run_${randomUUID()}:7:0`;
    const holder = new IdempotencyStore(pool, 3600, 100);
    expect(await holder.claim("acme", key, "ship", 60_000, "holder")).toEqual({ kind: "claimed" });
    holder.close();
    await admin.query(`UPDATE "${schema}".tool_calls SET heartbeat_at = NULL WHERE idempotency_key = $1`, [
      key,
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect(await store.claim("acme", key, "ship", 60_000, "young")).toEqual({ kind: "running" });
    await admin.query(
      `UPDATE "${schema}".tool_calls SET claimed_at = now() - interval '2 minutes' WHERE idempotency_key = $1`,
      [key],
    );
    expect(await store.claim("acme", key, "ship", 60_000, "old")).toEqual({ kind: "unknown" });
  });

  it("stops renewing a claim once its record or its release is stored", async () => {
    const holder = new IdempotencyStore(pool, 3600, 100);
    const done = `run_${randomUUID()}:8:0`;
    const dropped = `run_${randomUUID()}:8:1`;
    expect(await holder.claim("acme", done, "ship", 60_000, "a")).toEqual({ kind: "claimed" });
    expect(await holder.claim("acme", dropped, "ship", 60_000, "b")).toEqual({ kind: "claimed" });
    expect(holder.holding).toBe(2);
    expect(await holder.completeSoon("acme", done, SHIPPED)).toBe(true);
    await holder.letGo("acme", dropped, "b");
    expect(holder.holding).toBe(0);
    holder.close();
  });

  it("keeps letting a claim go while the store refuses, until it is gone", async () => {
    const key = `run_${randomUUID()}:1:0`;
    expect(await store.claim("acme", key, "ship", 60_000, "mine")).toEqual({ kind: "claimed" });
    // another session holds the row: every DELETE of it fails on its lock timeout
    const blocker = await lockRow(key);
    await store.letGo("acme", key, "mine");
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(store.waitingForStore).toBe(1);
    const row = await admin.query(
      `SELECT status FROM "${schema}".tool_calls WHERE tenant = 'acme' AND idempotency_key = $1`,
      [key],
    );
    expect(row.rows).toEqual([{ status: "running" }]);
    await blocker.unlock();
    expect(await waitFor(() => store.waitingForStore === 0, 5000)).toBe(true);
    expect(await store.claim("acme", key, "ship", 60_000, "retry")).toEqual({ kind: "claimed" });
  });

  it("records an act the store refuses in the background, until it is stored", async () => {
    const key = `run_${randomUUID()}:4:0`;
    expect(await store.claim("acme", key, "ship", 60_000, "acting")).toEqual({ kind: "claimed" });
    const blocker = await lockRow(key);
    expect(await store.completeSoon("acme", key, SHIPPED)).toBe(false);
    expect(store.waitingForStore).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(store.waitingForStore).toBe(1);
    await blocker.unlock();
    expect(await waitFor(() => store.waitingForStore === 0, 5000)).toBe(true);
    expect(await store.claim("acme", key, "ship", 60_000, "later")).toMatchObject({
      kind: "done",
      reply: { content: '{"shipped":true}' },
    });
  });

  it("at shutdown, waits a bounded time for records still waiting for the store", async () => {
    const own = new IdempotencyStore(pool, 3600);
    const key = `run_${randomUUID()}:5:0`;
    expect(await own.claim("acme", key, "ship", 60_000, "acting")).toEqual({ kind: "claimed" });
    const blocker = await lockRow(key);
    expect(await own.completeSoon("acme", key, SHIPPED)).toBe(false);
    setTimeout(() => void blocker.unlock(), 300);
    await own.settle(5000);
    expect(own.waitingForStore).toBe(0);
    expect(await own.claim("acme", key, "ship", 60_000, "later")).toMatchObject({ kind: "done" });

    // a store that stays away is given up on once the time is up
    const stuck = `run_${randomUUID()}:5:1`;
    expect(await own.claim("acme", stuck, "ship", 60_000, "acting")).toEqual({ kind: "claimed" });
    const holder = await lockRow(stuck);
    expect(await own.completeSoon("acme", stuck, SHIPPED)).toBe(false);
    await own.settle(300);
    expect(own.waitingForStore).toBe(0);
    await holder.unlock();
    expect(await own.claim("acme", stuck, "ship", 60_000, "later")).toEqual({ kind: "running" });
  });

  it("a claim that fails is let go under its own token only: an earlier claim of the key stays", async () => {
    const key = `run_${randomUUID()}:2:0`;
    // an earlier claim of the key, by a call whose executor still runs it
    expect(await store.claim("acme", key, "ship", 60_000, "earlier")).toEqual({ kind: "claimed" });
    const blocker = await lockRow(key);
    // the claim's upsert waits for the row lock and fails: the store lets its token go
    await expect(store.claim("acme", key, "ship", 60_000, "failed")).rejects.toThrow(/lock timeout/);
    await blocker.unlock();
    expect(await waitFor(() => store.waitingForStore === 0, 5000)).toBe(true);
    // letting the failed claim go never drops the earlier claim it did not make
    expect(await store.claim("acme", key, "ship", 60_000, "later")).toEqual({ kind: "running" });
  });
});
