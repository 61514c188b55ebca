import type { MemoryForgetReply, MemoryForgetRequest } from "@agent-runtime/contracts";
import { withTransaction } from "@agent-runtime/stores";
import type pg from "pg";

/**
 * Deletes a thread, a document, or everything of a user (threads, messages,
 * documents, chunks) of one tenant, in one transaction. Returns what went and
 * which threads the caller must drop from the hot cache.
 */
export async function forgetRows(
  pool: pg.Pool,
  tenant: string,
  request: MemoryForgetRequest,
): Promise<{ deleted: MemoryForgetReply["deleted"]; threadIds: string[] }> {
  return withTransaction(pool, async (client) => {
    const deleted = { messages: 0, threads: 0, documents: 0, chunks: 0 };
    const count = async (sql: string, values: unknown[]) => (await client.query(sql, values)).rowCount ?? 0;
    let threadIds: string[] = [];
    if (request.threadId || request.userId) {
      const filter = request.threadId ? "id = $2" : "user_id = $2";
      const rows = await client.query<{ id: string }>(
        `SELECT id FROM threads WHERE tenant = $1 AND ${filter}`,
        [tenant, request.threadId ?? request.userId],
      );
      threadIds = rows.rows.map((row) => row.id);
      if (threadIds.length > 0) {
        deleted.messages = await count("DELETE FROM messages WHERE tenant = $1 AND thread_id = ANY($2)", [
          tenant,
          threadIds,
        ]);
        deleted.threads = await count("DELETE FROM threads WHERE tenant = $1 AND id = ANY($2)", [
          tenant,
          threadIds,
        ]);
      }
    }
    // documents go with a documentId, or with a user when no single thread was named
    const documentFilter = request.documentId
      ? "id = $2"
      : request.userId && !request.threadId
        ? "user_id = $2"
        : null;
    if (documentFilter) {
      const docs = await client.query<{ id: string }>(
        `SELECT id FROM documents WHERE tenant = $1 AND ${documentFilter}`,
        [tenant, request.documentId ?? request.userId],
      );
      const ids = docs.rows.map((row) => row.id);
      if (ids.length > 0) {
        deleted.chunks = await count("DELETE FROM chunks WHERE tenant = $1 AND document_id = ANY($2)", [
          tenant,
          ids,
        ]);
        deleted.documents = await count("DELETE FROM documents WHERE tenant = $1 AND id = ANY($2)", [
          tenant,
          ids,
        ]);
      }
    }
    return { deleted, threadIds };
  });
}
