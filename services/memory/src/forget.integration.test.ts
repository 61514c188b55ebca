import { createHash, randomBytes } from "node:crypto";
import { createPool, migrate } from "@agent-runtime/stores";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkTextHashes, forgetRows } from "./forget.js";
import { MIGRATIONS } from "./schema.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const schema = `memforget${randomBytes(4).toString("hex")}`;
let pool: pg.Pool;

const meta = { v: 1 as const, tenant: "acme", requestId: "forget", deadline: Date.now() + 60_000 };
/** How the model proxy names a cached embedding: sha256 of the text as UTF-8, hex. */
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function addDocument(id: string, userId: string | null, texts: string[], tenant = "acme") {
  await pool.query(
    "INSERT INTO documents (tenant, id, user_id, kind, text_hash) VALUES ($1, $2, $3, 'note', 'h')",
    [tenant, id, userId],
  );
  for (const [position, text] of texts.entries())
    await pool.query(
      `INSERT INTO chunks (tenant, id, document_id, user_id, kind, position, text, text_hash, tokens)
       VALUES ($1, $2, $3, $4, 'note', $5, $6, md5($6), 3)`,
      [tenant, `${id}:${position}`, id, userId, position, text],
    );
}

beforeAll(async () => {
  pool = await createPool({ url: DATABASE_URL, schema, applicationName: "memory-forget-test" });
  await migrate(pool, "memory", MIGRATIONS);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe("forgetting in memory", () => {
  it("names the chunks of the documents it will delete as the model proxy names their embeddings", async () => {
    const texts = ["Plain words.", "Café, naïve façade — 東京 🙂", "Line one\nline two\ttabbed"];
    await addDocument("doc-ann", "ann", texts);
    await addDocument("doc-ann-2", "ann", ["Plain words."]);
    await addDocument("doc-bob", "bob", ["Bob's own words."]);
    await addDocument("doc-other-tenant", "ann", ["Elsewhere."], "globex");

    const ofUser = await chunkTextHashes(pool, "acme", { meta, userId: "ann" });
    expect(ofUser.sort()).toEqual(texts.map(sha256).sort());
    expect(await chunkTextHashes(pool, "acme", { meta, documentId: "doc-bob" })).toEqual([
      sha256("Bob's own words."),
    ]);
    // a thread forget deletes no document: no embedding to drop
    expect(await chunkTextHashes(pool, "acme", { meta, threadId: "t-1", userId: "ann" })).toEqual([]);

    const { deleted } = await forgetRows(pool, "acme", { meta, userId: "ann" });
    expect(deleted).toMatchObject({ documents: 2, chunks: 4 });
    expect(await chunkTextHashes(pool, "acme", { meta, userId: "ann" })).toEqual([]);
    expect(await chunkTextHashes(pool, "globex", { meta, userId: "ann" })).toEqual([sha256("Elsewhere.")]);
  });

  it("answers the ids of the threads it deleted", async () => {
    for (const [id, user] of [
      ["t-a", "carol"],
      ["t-b", "carol"],
      ["t-c", "dave"],
    ] as const)
      await pool.query("INSERT INTO threads (tenant, id, user_id) VALUES ('acme', $1, $2)", [id, user]);
    const { threadIds, deleted } = await forgetRows(pool, "acme", { meta, userId: "carol" });
    expect(threadIds.sort()).toEqual(["t-a", "t-b"]);
    expect(deleted.threads).toBe(2);
    const left = await pool.query("SELECT id FROM threads WHERE tenant = 'acme' ORDER BY id");
    expect(left.rows.map((row) => row.id)).toEqual(["t-c"]);
  });
});
