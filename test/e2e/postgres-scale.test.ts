/**
 * Postgres at scale: the run journal partitioned by week, converted in place from the plain tables
 * of earlier versions, retention by whole weeks, and every hot query of the orchestrator's store
 * and journal served by an index on a million runs (EXPLAIN of each, failing on a sequential scan
 * of any table that holds more than a few thousand rows: the DEFAULT partition and the weeks ahead
 * are empty, and a planner may scan an empty table as it likes).
 */
import { PARTITION_MIGRATIONS, RUN_STORE_MIGRATIONS, retentionStatements } from "@agent-runtime/orchestrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASE_URL, newIsolation } from "../support/isolation.js";

const RUNS = Number(process.env.PG_SCALE_RUNS ?? 1_000_000);
/** A relation this large scanned whole fails the test. */
const SCAN_LIMIT_ROWS = 5000;

let db: pg.Client;
const schemas: string[] = [];

async function useSchema(label: string): Promise<string> {
  const { schema } = newIsolation(label);
  schemas.push(schema);
  await db.query(`CREATE SCHEMA "${schema}"`);
  await db.query(`SET search_path TO "${schema}", public`);
  return schema;
}

async function migrate(statements: readonly string[]): Promise<void> {
  for (const statement of statements) await db.query(statement);
}

beforeAll(async () => {
  db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
});

afterAll(async () => {
  for (const schema of schemas)
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await db?.end();
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

function scans(node: PlanNode, found: PlanNode[] = []): PlanNode[] {
  if (node["Relation Name"]) found.push(node);
  for (const child of node.Plans ?? []) scans(child, found);
  return found;
}

describe("run journal partitions", () => {
  it("converts the plain tables of an earlier version in place, keeping every row", async () => {
    await useSchema("pgconvert");
    const legacy = RUN_STORE_MIGRATIONS.slice(0, RUN_STORE_MIGRATIONS.length - PARTITION_MIGRATIONS.length);
    await migrate(legacy);
    await db.query(
      `INSERT INTO runs (id, tenant, agent, status, priority, request, created_at)
       SELECT 'run_' || g, 'acme', 'assistant', 'completed', 'interactive', '{}', now() - g * interval '1 day'
         FROM generate_series(1, 40) g`,
    );
    await db.query(
      `INSERT INTO run_steps (run_id, step, assistant) SELECT 'run_' || g, 1, '{"role":"assistant"}' FROM generate_series(1, 40) g`,
    );
    await migrate(RUN_STORE_MIGRATIONS);
    await migrate(RUN_STORE_MIGRATIONS); // every start runs them again
    const kinds = await db.query<{ relname: string; relkind: string }>(
      `SELECT relname, relkind::text FROM pg_class WHERE relnamespace = current_schema()::regnamespace
        AND relname IN ('runs', 'run_steps') ORDER BY relname`,
    );
    expect(kinds.rows).toEqual([
      { relname: "run_steps", relkind: "p" },
      { relname: "runs", relkind: "p" },
    ]);
    const counts = await db.query<{ runs: number; steps: number; matched: number }>(
      `SELECT (SELECT count(*)::int FROM runs) AS runs, (SELECT count(*)::int FROM run_steps) AS steps,
              (SELECT count(*)::int FROM run_steps s JOIN runs r ON r.id = s.run_id AND r.created_at = s.run_created_at) AS matched`,
    );
    expect(counts.rows[0]).toEqual({ runs: 40, steps: 40, matched: 40 });
    // the rows went to their weeks, not the DEFAULT partition
    const inDefault = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM runs_default");
    expect(inDefault.rows[0]!.n).toBe(0);
  }, 60_000);

  it("keeps one row per run when a run is written again with another creation time", async () => {
    await useSchema("pgonce");
    await migrate(RUN_STORE_MIGRATIONS);
    const insert = (createdAtMs: number) =>
      db.query(
        `INSERT INTO runs (id, tenant, agent, status, priority, request, attempts, created_at)
         VALUES ('run_again', 'acme', 'assistant', 'running', 'interactive', '{}', 1,
           COALESCE((SELECT r.created_at FROM runs r WHERE r.id = 'run_again' LIMIT 1), to_timestamp(${createdAtMs} / 1000.0)))
         ON CONFLICT (id, created_at) DO UPDATE SET attempts = runs.attempts + 1`,
      );
    await insert(Date.now() - 3 * 24 * 3600_000);
    await insert(Date.now()); // e.g. a retried POST /v1/runs after the duplicate window
    const rows = await db.query<{ attempts: number }>("SELECT attempts FROM runs WHERE id = 'run_again'");
    expect(rows.rows).toEqual([{ attempts: 2 }]);
  });

  it("drops the weeks past the retention horizon and keeps the weeks ahead", async () => {
    await useSchema("pgretain");
    await migrate(RUN_STORE_MIGRATIONS);
    await db.query("SELECT ar_ensure_run_partitions(2, 20)");
    await db.query(
      `INSERT INTO runs (id, tenant, agent, status, priority, request, created_at)
       SELECT 'run_' || g, 'acme', 'assistant', 'completed', 'interactive', '{}', now() - g * interval '1 day'
         FROM generate_series(0, 139) g`,
    );
    await db.query(
      `INSERT INTO event_runs (tenant, event_id, agent, run_id, created_at)
       SELECT 'acme', 'evt_' || g, 'watcher', 'run_' || g, now() - g * interval '1 day' FROM generate_series(0, 59) g`,
    );
    for (const statement of retentionStatements({ runDays: 30, eventClaimDays: 14 }))
      await db.query(statement);
    const oldest = await db.query<{ days: number }>(
      "SELECT extract(day FROM now() - min(created_at))::int AS days FROM runs",
    );
    // whole weeks are dropped: up to a week more than the horizon stays
    expect(oldest.rows[0]!.days).toBeGreaterThanOrEqual(30);
    expect(oldest.rows[0]!.days).toBeLessThan(38);
    const claims = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM event_runs");
    // 0 to 13 days old (the one of exactly 14 days is older than the cutoff by the time it runs)
    expect(claims.rows[0]!.n).toBe(14);
    const ahead = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'runs'::regclass AND pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES FROM (''' || to_char(date_trunc('week', now() AT TIME ZONE 'UTC') + interval '2 weeks', 'YYYY-MM-DD') || '%'`,
    );
    expect(ahead.rows[0]!.n).toBe(1);
  });
});

describe(`hot queries on ${RUNS.toLocaleString("en")} runs`, () => {
  beforeAll(async () => {
    await useSchema("pgscale");
    await migrate(RUN_STORE_MIGRATIONS);
    // ten weeks of history, one run every few seconds, 500 tenants
    const spacing = (10 * 7 * 24 * 3600) / RUNS;
    await db.query("SELECT ar_ensure_run_partitions(2, 11)");
    await db.query(
      `INSERT INTO runs (id, tenant, agent, status, priority, thread_id, user_id, parent_run_id, request, steps,
                         created_at, updated_at, finished_at)
       SELECT 'run_' || md5(g::text), 'tenant_' || (g % 500), CASE WHEN g % 7 = 0 THEN 'shipper' ELSE 'assistant' END,
              CASE WHEN g % 1000 = 0 THEN 'running' WHEN g % 997 = 0 THEN 'queued' WHEN g % 50 = 0 THEN 'failed' ELSE 'completed' END,
              CASE WHEN g % 5 = 0 THEN 'batch' ELSE 'interactive' END,
              'thread_' || (g / 4), 'user_' || (g % 20000), CASE WHEN g % 100 = 0 THEN 'run_' || md5((g - 1)::text) END,
              '{"input":[{"role":"user","content":"hello"}]}', 2,
              now() - g * make_interval(secs => $1), now() - g * make_interval(secs => $1), now() - g * make_interval(secs => $1)
         FROM generate_series(1, $2::int) g`,
      [spacing, RUNS],
    );
    await db.query(
      `INSERT INTO run_steps (run_id, run_created_at, step, assistant)
       SELECT 'run_' || md5(g::text), now() - g * make_interval(secs => $1), s, '{"role":"assistant","content":"ok"}'
         FROM generate_series(1, $2::int, 10) g, generate_series(1, 2) s`,
      [spacing, RUNS],
    );
    await db.query(
      `INSERT INTO event_runs (tenant, event_id, agent, run_id, created_at)
       SELECT 'tenant_' || (g % 500), 'evt_' || g, 'watcher', 'run_' || md5(g::text), now() - g * make_interval(secs => $1)
         FROM generate_series(1, $2::int, 5) g`,
      [spacing, RUNS],
    );
    await db.query("ANALYZE runs");
    await db.query("ANALYZE run_steps");
    await db.query("ANALYZE event_runs");
  }, 600_000);

  const someRun = "run_" + "c4ca4238a0b923820dcc509a6f75849b"; // md5('1')
  const cursor = `(created_at, id) < (now() - interval '3 days', 'run_zzz')`;
  /** The orchestrator's hot statements (run-store.ts, journal.ts, run-endpoints.ts), with literal values. */
  const hotQueries: Record<string, string> = {
    "a run's first created_at (every write of a run)": `SELECT r.created_at FROM runs r WHERE r.id = '${someRun}' LIMIT 1`,
    "register a queued run": `INSERT INTO runs (id, tenant, agent, status, priority, request, attempts, created_at)
       VALUES ('${someRun}', 'tenant_1', 'assistant', 'queued', 'batch', '{}', 0,
         COALESCE((SELECT r.created_at FROM runs r WHERE r.id = '${someRun}' LIMIT 1), now()))
       ON CONFLICT (id, created_at) DO NOTHING`,
    "begin or take over a run": `INSERT INTO runs (id, tenant, agent, status, priority, request, attempts, created_at, started_at)
       VALUES ('${someRun}', 'tenant_1', 'assistant', 'running', 'interactive', '{}', 1,
         COALESCE((SELECT r.created_at FROM runs r WHERE r.id = '${someRun}' LIMIT 1), now()), now())
       ON CONFLICT (id, created_at) DO UPDATE SET attempts = runs.attempts + 1, updated_at = now()
       RETURNING status, attempts`,
    "a run's steps": `SELECT step, assistant, tool_messages FROM run_steps WHERE run_id = '${someRun}' ORDER BY step`,
    "journal a step": `INSERT INTO run_steps (run_id, run_created_at, step, assistant)
       VALUES ('${someRun}', COALESCE((SELECT r.created_at FROM runs r WHERE r.id = '${someRun}' LIMIT 1), now()), 3, '{}')
       ON CONFLICT (run_id, step, run_created_at) DO NOTHING`,
    "a run's status": `SELECT status FROM runs WHERE id = '${someRun}'`,
    "get a run (tenant's)": `SELECT * FROM runs WHERE id = '${someRun}' AND tenant = 'tenant_1'`,
    "a run's plan": `SELECT plan, plan_reason FROM runs WHERE id = '${someRun}'`,
    "record a plan": `UPDATE runs SET plan = '{}', plan_reason = 'x', cost_usd = cost_usd + 0 WHERE id = '${someRun}'`,
    "cancel a run": `WITH before AS (
         SELECT id, status FROM runs WHERE id = '${someRun}' AND tenant = 'tenant_1' AND status IN ('queued', 'running') FOR UPDATE
       )
       UPDATE runs SET status = 'cancelled' FROM before WHERE runs.id = before.id RETURNING before.status`,
    "list a tenant's runs":
      "SELECT * FROM runs WHERE tenant = 'tenant_7' ORDER BY created_at DESC, id DESC LIMIT 21",
    "list, next page": `SELECT * FROM runs WHERE tenant = 'tenant_7' AND ${cursor} ORDER BY created_at DESC, id DESC LIMIT 21`,
    "list a thread's runs": `SELECT * FROM runs WHERE tenant = 'tenant_7' AND thread_id = 'thread_1750' ORDER BY created_at DESC, id DESC LIMIT 21`,
    "list by status": `SELECT * FROM runs WHERE tenant = 'tenant_7' AND status = 'running' ORDER BY created_at DESC, id DESC LIMIT 21`,
    "list by agent": `SELECT * FROM runs WHERE tenant = 'tenant_7' AND agent = 'shipper' ORDER BY created_at DESC, id DESC LIMIT 21`,
    "a tenant's open runs": `SELECT count(*) FROM runs WHERE tenant = 'tenant_7' AND status IN ('queued', 'running')`,
    "a run's children": `SELECT id, status FROM runs WHERE parent_run_id = '${someRun}'`,
    "claim an event's run": `WITH claimed AS (
         INSERT INTO event_runs (tenant, event_id, agent, run_id, published) VALUES ('tenant_1', 'evt_1', 'watcher', 'run_x', false)
         ON CONFLICT DO NOTHING RETURNING run_id, published
       )
       SELECT run_id, published FROM claimed
       UNION ALL
       SELECT run_id, published FROM event_runs WHERE tenant = 'tenant_1' AND event_id = 'evt_1' AND agent = 'watcher'
       LIMIT 1`,
    "mark an event's run published": `UPDATE event_runs SET published = true WHERE tenant = 'tenant_1' AND event_id = 'evt_1' AND agent = 'watcher'`,
    "trim old event claims (retention)":
      "DELETE FROM event_runs WHERE created_at < now() - interval '30 days'",
  };

  it.each(Object.keys(hotQueries))("%s: no sequential scan of a large table", async (name) => {
    const explained = await db.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (FORMAT JSON) ${hotQueries[name]}`,
    );
    const plan = explained.rows[0]!["QUERY PLAN"][0]!.Plan;
    const sizes = new Map(
      (
        await db.query<{ relname: string; rows: number }>(
          "SELECT relname, reltuples::bigint AS rows FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'",
        )
      ).rows.map((row) => [row.relname, Number(row.rows)]),
    );
    const large = scans(plan).filter(
      (node) =>
        node["Node Type"] === "Seq Scan" && (sizes.get(node["Relation Name"]!) ?? 0) > SCAN_LIMIT_ROWS,
    );
    expect(
      large.map((node) => `${node["Relation Name"]} (${sizes.get(node["Relation Name"]!)} rows)`),
      JSON.stringify(plan, null, 1).slice(0, 4000),
    ).toEqual([]);
  });

  it("holds the million runs in weekly partitions, none in the DEFAULT one", async () => {
    const parts = await db.query<{ relname: string; rows: number }>(
      `SELECT c.relname, c.reltuples::bigint AS rows FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'runs'::regclass ORDER BY c.relname`,
    );
    expect(parts.rows.length).toBeGreaterThanOrEqual(12);
    const total = await db.query<{ n: number; inDefault: number }>(
      `SELECT count(*)::int AS n, (SELECT count(*)::int FROM runs_default) AS "inDefault" FROM runs`,
    );
    expect(total.rows[0]).toEqual({ n: RUNS, inDefault: 0 });
  });
});
