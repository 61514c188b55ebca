import { randomBytes } from "node:crypto";
import { createPool, migrate } from "@agent-runtime/stores";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS } from "./schema.js";
import { type ThreadAppend, ThreadAppends } from "./thread-appends.js";

// Real Postgres, a schema of its own.
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const schema = `appends${randomBytes(4).toString("hex")}`;
let pool: pg.Pool;

beforeAll(async () => {
  pool = await createPool({ url: DATABASE_URL, schema, applicationName: "thread-appends-test" });
  await migrate(pool, "memory", MIGRATIONS);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const turn = (threadId: string, ids: string[], tokens = 5): ThreadAppend => ({
  tenant: "acme",
  threadId,
  agent: "assistant",
  messages: ids.map((id) => ({ id, message: { role: "user", content: `message ${id}` }, tokens })),
});

async function storedIds(threadId: string): Promise<string[]> {
  const rows = await pool.query<{ id: string }>(
    "SELECT id FROM messages WHERE tenant = 'acme' AND thread_id = $1 ORDER BY seq",
    [threadId],
  );
  return rows.rows.map((row) => row.id);
}

describe("thread appends", () => {
  it("appends made at once share a statement, one per thread, each thread in the order appended", async () => {
    const appends = new ThreadAppends(pool);
    const outcomes = await Promise.all([
      appends.append(turn("a", ["a1", "a2"])),
      appends.append(turn("b", ["b1"])),
      appends.append(turn("a", ["a3"])),
      appends.append(turn("c", ["c1", "c2", "c3"])),
      appends.append(turn("b", ["b2"])),
    ]);
    // the first batch took a, b and c; the second the later appends of a and b
    expect(appends.writes).toBe(2);
    expect(await storedIds("a")).toEqual(["a1", "a2", "a3"]);
    expect(await storedIds("b")).toEqual(["b1", "b2"]);
    expect(await storedIds("c")).toEqual(["c1", "c2", "c3"]);
    expect(outcomes.map((outcome) => outcome.added.map((added) => added.id))).toEqual([
      ["a1", "a2"],
      ["b1"],
      ["a3"],
      ["c1", "c2", "c3"],
      ["b2"],
    ]);
    // sequence numbers grow within a thread, and each append counts the thread's whole history
    const [a12, , a3] = outcomes;
    expect(a12!.added[0]!.seq).toBeLessThan(a12!.added[1]!.seq);
    expect(a12!.added[1]!.seq).toBeLessThan(a3!.added[0]!.seq);
    expect(outcomes.map((outcome) => outcome.historyTokens)).toEqual([10, 5, 15, 15, 10]);
    expect(outcomes.every((outcome) => outcome.summaryUpto === 0)).toBe(true);
  });

  it("stores a repeated append's messages once", async () => {
    const appends = new ThreadAppends(pool);
    await appends.append(turn("again", ["g1", "g2"]));
    const repeated = await appends.append(turn("again", ["g1", "g2", "g3"]));
    expect(repeated.added.map((added) => added.id)).toEqual(["g3"]);
    expect(repeated.historyTokens).toBe(15);
    expect(await storedIds("again")).toEqual(["g1", "g2", "g3"]);
  });

  it("fails only the append whose data the store refuses", async () => {
    const appends = new ThreadAppends(pool);
    const refused: ThreadAppend = {
      ...turn("bad", []),
      // jsonb cannot hold U+0000
      messages: [{ id: "bad1", message: { role: "user", content: "nul \u0000 here" }, tokens: 3 }],
    };
    const [good, bad, other] = await Promise.allSettled([
      appends.append(turn("good", ["ok1"])),
      appends.append(refused),
      appends.append(turn("other", ["ok2"])),
    ]);
    expect(good.status).toBe("fulfilled");
    expect(other.status).toBe("fulfilled");
    expect(bad.status).toBe("rejected");
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/unicode|\\u0000/i);
    expect(await storedIds("good")).toEqual(["ok1"]);
    expect(await storedIds("other")).toEqual(["ok2"]);
    expect(await storedIds("bad")).toEqual([]);
  });

  it("a gathering append is written at once when appends come slowly", async () => {
    const appends = new ThreadAppends(pool);
    await appends.append(turn("slow", ["s1"]), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await appends.append(turn("slow", ["s2"]), 60_000);
    expect(appends.writes).toBe(2);
    expect(await storedIds("slow")).toEqual(["s1", "s2"]);
  });

  it("while appends come quickly, a gathering one waits until one is due, which takes it along, or until its own time is up", async () => {
    const appends = new ThreadAppends(pool);
    // right after another append of its thread (which it cannot share a batch with): it gathers
    const first = appends.append(turn("quick", ["q1"]), 60_000);
    let gatheredDone = false;
    const gathered = appends.append(turn("quick", ["q2"]), 60_000).then((outcome) => {
      gatheredDone = true;
      return outcome;
    });
    await first;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gatheredDone).toBe(false);
    expect(appends.writes).toBe(1);
    // an append that is due at once starts a batch and takes the waiting one along
    await appends.append(turn("now", ["n1"]));
    expect((await gathered).added.map((added) => added.id)).toEqual(["q2"]);
    expect(appends.writes).toBe(2);
    expect(await storedIds("quick")).toEqual(["q1", "q2"]);

    // with nothing else coming, a gathering append is written when its time is up
    const before = appends.append(turn("timed", ["t1"]));
    const timed = appends.append(turn("timed", ["t2"]), 30);
    await before;
    expect((await timed).added.map((added) => added.id)).toEqual(["t2"]);
    expect(appends.writes).toBe(4);
  });
});
