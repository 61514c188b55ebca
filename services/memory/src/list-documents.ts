import { type MemoryListReply, type MemoryListRequest, RuntimeError } from "@agent-runtime/contracts";
import type pg from "pg";
import { z } from "zod";

/** Where a page ends: the last document's creation time (as Postgres prints it, exact) and id. */
const Cursor = z.tuple([z.string().min(1).max(100), z.string().min(1).max(200)]);

function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString("base64url");
}

function decodeCursor(cursor: string): [string, string] {
  try {
    return Cursor.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
  } catch {
    throw new RuntimeError("validation", "not a cursor from nextCursor", {
      retryable: false,
      details: [{ path: "cursor", message: "not a cursor from nextCursor" }],
    });
  }
}

interface DocumentRow {
  id: string;
  user_id: string | null;
  kind: string;
  metadata: Record<string, unknown>;
  created_at: Date;
  created_text: string;
  chunks: number;
  tokens: number;
  text: string | null;
}

/**
 * One page of a tenant's long-term memories, newest first (creation time, then id), each with its
 * text (its chunks in order, cut at `maxTextChars`), chunk count and tokens. Only documents whose id
 * starts with `idPrefix` and, with `userId`, that user's.
 */
export async function listDocuments(pool: pg.Pool, request: MemoryListRequest): Promise<MemoryListReply> {
  const after = request.cursor ? decodeCursor(request.cursor) : null;
  const result = await pool.query<DocumentRow>(
    `SELECT d.id, d.user_id, d.kind, d.metadata, d.created_at, d.created_at::text AS created_text,
            c.chunks, c.tokens, c.text
     FROM documents d
     CROSS JOIN LATERAL (
       SELECT count(*)::int AS chunks, coalesce(sum(tokens), 0)::int AS tokens,
              left(string_agg(text, E'\\n\\n' ORDER BY position), $7 + 1) AS text
       FROM chunks WHERE tenant = d.tenant AND document_id = d.id
     ) c
     WHERE d.tenant = $1 AND left(d.id, length($2)) = $2
       AND ($3::text IS NULL OR d.user_id = $3)
       AND ($4::text[] IS NULL OR d.kind = ANY($4))
       AND ($5::timestamptz IS NULL OR (d.created_at, d.id) < ($5::timestamptz, $6::text))
     ORDER BY d.created_at DESC, d.id DESC
     LIMIT $8`,
    [
      request.meta.tenant,
      request.idPrefix,
      request.userId ?? null,
      request.kinds ?? null,
      after?.[0] ?? null,
      after?.[1] ?? null,
      request.maxTextChars,
      request.limit + 1,
    ],
  );
  const rows = result.rows.slice(0, request.limit);
  const last = rows.at(-1);
  return {
    documents: rows.map((row) => {
      const text = row.text ?? "";
      return {
        documentId: row.id,
        userId: row.user_id,
        kind: row.kind,
        text: text.slice(0, request.maxTextChars),
        truncated: text.length > request.maxTextChars,
        chunks: row.chunks,
        tokens: row.tokens,
        metadata: row.metadata,
        createdAt: row.created_at.toISOString(),
      };
    }),
    nextCursor: result.rows.length > request.limit && last ? encodeCursor(last.created_text, last.id) : null,
  };
}
