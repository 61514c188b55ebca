import type { MemoryForgetReply, MemoryForgetRequest } from "@agent-runtime/contracts";
import { withTransaction } from "@agent-runtime/stores";
import type pg from "pg";

/** Which documents a forget request removes: a document, or a user's (not when it names a thread only). */
function documentsTargeted(request: MemoryForgetRequest): boolean {
  return Boolean(request.documentId || (request.userId && !request.threadId));
}

/**
 * The sha256 (hex) of every chunk text of the documents a forget request removes: how the model
 * proxy names their cached embeddings, which go first (a forget that fails after this is retried).
 */
export async function chunkTextHashes(
  pool: pg.Pool,
  tenant: string,
  request: MemoryForgetRequest,
): Promise<string[]> {
  if (!documentsTargeted(request)) return [];
  const result = await pool.query<{ hash: string }>(
    `SELECT DISTINCT encode(sha256(convert_to(c.text, 'UTF8')), 'hex') AS hash
       FROM chunks c JOIN documents d ON d.tenant = c.tenant AND d.id = c.document_id
      WHERE d.tenant = $1 AND ($2::text IS NULL OR d.id = $2) AND ($3::text IS NULL OR d.user_id = $3)`,
    [tenant, request.documentId ?? null, request.userId ?? null],
  );
  return result.rows.map((row) => row.hash);
}

/**
 * Deletes, within one tenant and one transaction: a thread (`threadId`), a
 * document (`documentId`), or everything of a user (`userId` alone: threads,
 * messages, documents, chunks). Named together, the conditions combine (a
 * thread or document only if it belongs to that user). Returns what went and
 * which threads the caller must drop from the hot cache.
 */
export async function forgetRows(
  pool: pg.Pool,
  tenant: string,
  request: MemoryForgetRequest,
): Promise<{ deleted: MemoryForgetReply["deleted"]; threadIds: string[] }> {
  return withTransaction(pool, async (client) => {
    const deleted = { messages: 0, threads: 0, documents: 0, chunks: 0 };
    let threadIds: string[] = [];
    const userId = request.userId ?? null;
    if (request.threadId || (request.userId && !request.documentId)) {
      const result = await client.query<{ id: string; messages: number }>(
        `WITH gone AS (
           DELETE FROM threads WHERE tenant = $1
             AND ($2::text IS NULL OR id = $2) AND ($3::text IS NULL OR user_id = $3)
           RETURNING id
         ), messages AS (
           DELETE FROM messages m USING gone WHERE m.tenant = $1 AND m.thread_id = gone.id RETURNING 1
         )
         SELECT id, (SELECT count(*)::int FROM messages) AS messages FROM gone`,
        [tenant, request.threadId ?? null, userId],
      );
      threadIds = result.rows.map((row) => row.id);
      deleted.threads = threadIds.length;
      deleted.messages = result.rows[0]?.messages ?? 0;
    }
    if (documentsTargeted(request)) {
      const result = await client.query<{ documents: number; chunks: number }>(
        `WITH gone AS (
           DELETE FROM documents WHERE tenant = $1
             AND ($2::text IS NULL OR id = $2) AND ($3::text IS NULL OR user_id = $3)
           RETURNING id
         ), chunks AS (
           DELETE FROM chunks c USING gone WHERE c.tenant = $1 AND c.document_id = gone.id RETURNING 1
         )
         SELECT (SELECT count(*)::int FROM gone) AS documents, (SELECT count(*)::int FROM chunks) AS chunks`,
        [tenant, request.documentId ?? null, userId],
      );
      deleted.documents = result.rows[0]?.documents ?? 0;
      deleted.chunks = result.rows[0]?.chunks ?? 0;
    }
    return { deleted, threadIds };
  });
}
