import type pg from "pg";

export interface Pgvector {
  dimensions: number;
  /** pgvector ≥ 0.8: filtered HNSW scans keep going until enough rows pass the filter. */
  iterativeScan: boolean;
}

/**
 * pgvector when the extension can be created (an HNSW index over
 * `embedding_v vector(<dimensions>)`), otherwise undefined: the stock
 * PostgreSQL path (bit signatures + exact re-rank). Decided once at start.
 */
export async function enablePgvector(pool: pg.Pool, dimensions: number): Promise<Pgvector | undefined> {
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
      return undefined;
    }
    await client.query(`ALTER TABLE chunks ADD COLUMN IF NOT EXISTS embedding_v vector(${dimensions})`);
    await client.query(
      "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON chunks USING hnsw (embedding_v vector_cosine_ops)",
    );
    const version = await client.query<{ extversion: string }>(
      "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
    );
    await client.query("COMMIT");
    const [major = 0, minor = 0] = (version.rows[0]?.extversion ?? "0.0").split(".").map(Number);
    return { dimensions, iterativeScan: major > 0 || minor >= 8 };
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
