import { randomBytes } from "node:crypto";
import type { RunRequest } from "@agent-runtime/contracts";
import { createPool } from "@agent-runtime/stores";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPermanent, Journal, type RunState, retryTransient } from "./journal.js";
import { RunStore } from "./run-store.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const schema = `journal${randomBytes(4).toString("hex")}`;
let pool: pg.Pool;

beforeAll(async () => {
  pool = await createPool({ url: DATABASE_URL, schema, applicationName: "journal-test" });
  await RunStore.create(pool);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const run = (runId: string, status: RunState["status"], content = "hello"): RunState => {
  const request: RunRequest = {
    v: 1,
    runId,
    tenant: "acme",
    agent: "assistant",
    input: [{ role: "user", content }],
    priority: "interactive",
    createdAt: Date.now(),
    deadline: Date.now() + 60_000,
    stream: false,
    source: "chat",
  };
  return {
    request,
    status,
    attempt: 1,
    startedAt: Date.now(),
    steps: status === "running" ? 0 : 1,
    usage: { promptTokens: 10, completionTokens: 5, cachedTokens: 0, totalTokens: 15 },
    costUsd: 0.001,
    ...(status === "completed" ? { output: { role: "assistant" as const, content: "done" } } : {}),
  };
};

describe("run journal", () => {
  it("writes the entries of concurrent runs in shared batches", async () => {
    const journal = new Journal(pool);
    const ids = Array.from({ length: 40 }, (_, index) => `run_batch_${index}_${schema}`);
    const written = await Promise.all(
      ids.map((id) => journal.write({ run: run(id, "completed"), finishToken: id })),
    );
    expect(written.every((entry) => entry.status === "completed")).toBe(true);
    expect(written.map((entry) => entry.finishedBy)).toEqual(ids);
    // the first entry goes alone; the other 39 gathered while it committed
    expect(journal.batches).toBeLessThanOrEqual(3);
    const stored = await pool.query("SELECT count(*)::int AS n FROM runs WHERE id = ANY($1)", [ids]);
    expect(stored.rows[0]).toEqual({ n: 40 });
  });

  it("fails only the entry whose data Postgres refuses", async () => {
    const journal = new Journal(pool);
    const good = [`run_good_a_${schema}`, `run_good_b_${schema}`];
    const bad = `run_bad_${schema}`;
    const results = await Promise.allSettled([
      journal.write({ run: run(good[0]!, "running") }),
      journal.write({ run: run(bad, "running", "lone \ud800 half") }),
      journal.write({ run: run(good[1]!, "running") }),
    ]);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(isPermanent((results[1] as PromiseRejectedResult).reason)).toBe(true);
    // scrubbed, the same run can be recorded (as failed, its data replaced where Postgres refused it)
    const scrubbed = await journal.write({ run: run(bad, "failed", "lone \ud800 half"), scrub: true });
    expect(scrubbed.status).toBe("failed");
  });

  it("keeps a run's first end: a late or repeated write changes neither its status nor who ended it", async () => {
    const journal = new Journal(pool);
    const id = `run_end_${schema}`;
    await journal.write({ run: run(id, "running") });
    const first = await journal.write({ run: run(id, "completed"), finishToken: "first" });
    const second = await journal.write({ run: run(id, "failed"), finishToken: "second" });
    const late = await journal.write({ run: run(id, "running") });
    expect(first).toEqual({ status: "completed", finishedBy: "first" });
    expect(second).toEqual({ status: "completed", finishedBy: "first" });
    expect(late).toEqual({ status: "completed", finishedBy: "first" });
    const row = await pool.query("SELECT status, steps, output FROM runs WHERE id = $1", [id]);
    expect(row.rows[0]).toEqual({
      status: "completed",
      steps: 1,
      output: { role: "assistant", content: "done" },
    });
  });

  it("writes a run's entries queued together in order, one batch each", async () => {
    const journal = new Journal(pool);
    const id = `run_order_${schema}`;
    const other = `run_order_other_${schema}`;
    const step = (index: number) => ({
      recorded: {
        step: index,
        assistant: { role: "assistant" as const, content: `step ${index}` },
        toolMessages: [],
        usage: { promptTokens: 1, completionTokens: 1, cachedTokens: 0, totalTokens: 2 },
        costUsd: 0,
      },
    });
    const written = await Promise.all([
      journal.write({ run: run(id, "running"), step: step(0) }),
      journal.write({ run: run(other, "running") }),
      journal.write({ run: run(id, "completed"), step: step(1), finishToken: "end" }),
    ]);
    expect(written).toEqual([
      { status: "running", finishedBy: null },
      { status: "running", finishedBy: null },
      { status: "completed", finishedBy: "end" },
    ]);
    const steps = await pool.query("SELECT step FROM run_steps WHERE run_id = $1 ORDER BY step", [id]);
    expect(steps.rows).toEqual([{ step: 0 }, { step: 1 }]);
  });

  it("commits asynchronously when asked, and says when what it wrote is on disk", async () => {
    const journal = new Journal(pool, { commit: "async" });
    const ids = Array.from({ length: 5 }, (_, index) => `run_async_${index}_${schema}`);
    await Promise.all(ids.map((id) => journal.write({ run: run(id, "completed"), finishToken: id })));
    // visible to every reader at once
    const stored = await pool.query("SELECT count(*)::int AS n FROM runs WHERE id = ANY($1)", [ids]);
    expect(stored.rows[0]).toEqual({ n: 5 });
    const position = await pool.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn");
    await journal.flushed();
    const flushed = await pool.query<{ done: boolean }>(
      "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS done",
      [position.rows[0]!.lsn],
    );
    expect(flushed.rows[0]).toEqual({ done: true });
  });

  it("retries transient store errors until the deadline and fails data errors at once", async () => {
    const lost = Object.assign(new Error("Connection terminated unexpectedly"), { code: "ECONNRESET" });
    let calls = 0;
    const recovered = await retryTransient(async () => {
      calls++;
      if (calls < 3) throw lost;
      return "stored";
    }, Date.now() + 5000);
    expect([recovered, calls]).toEqual(["stored", 3]);

    const refused = Object.assign(new Error("unsupported Unicode escape sequence"), { code: "22P05" });
    let refusedCalls = 0;
    const permanent = retryTransient(async () => {
      refusedCalls++;
      throw refused;
    }, Date.now() + 5000);
    await expect(permanent).rejects.toMatchObject({ code: "validation", retryable: false });
    expect(refusedCalls).toBe(1);

    const started = Date.now();
    const down = retryTransient(async () => {
      throw lost;
    }, Date.now() + 400);
    await expect(down).rejects.toMatchObject({ code: "unavailable", retryable: true });
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
