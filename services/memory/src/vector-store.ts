import type pg from "pg";

/**
 * pgvector when the extension can be created (an HNSW index over
 * `embedding_v vector(<dimensions>)`), otherwise the stock-PostgreSQL path
 * (real[] plus LSH buckets). Decided once at start.
 */
export async function enablePgvector(pool: pg.Pool, dimensions: number): Promise<boolean> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || 'memory-vector'))");
    try {
      await client.query("SAVEPOINT vector_extension");
      await client.query("CREATE EXTENSION IF NOT EXISTS vector");
    } catch {
      await client.query("ROLLBACK TO SAVEPOINT vector_extension");
      await client.query("COMMIT");
      return false;
    }
    await client.query(`ALTER TABLE chunks ADD COLUMN IF NOT EXISTS embedding_v vector(${dimensions})`);
    await client.query(
      "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON chunks USING hnsw (embedding_v vector_cosine_ops)",
    );
    await client.query("COMMIT");
    return true;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export function vectorLiteral(vector: readonly number[]): string {
  return `[${vector.join(",")}]`;
}
