import { createHash, randomUUID } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import { Endpoints, type MemoryRememberRequest, type RequestMeta } from "@agent-runtime/contracts";
import { withTransaction } from "@agent-runtime/stores";
import type pg from "pg";
import { chunkText } from "./chunking.js";
import { countText } from "./tokens.js";
import { encodeVector, signature } from "./vector-math.js";
import { vectorLiteral } from "./vector-store.js";

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

/** Inputs per `model.embed` call (the contract allows 2048). */
const EMBED_BATCH = 128;

export interface RememberResult {
  documentId: string;
  chunks: number;
  /** Chunks still waiting for an embedding (an `index` job should run). */
  pending: number;
}

/** Long-term memory writes: documents split into chunks, embedded off the critical path. */
export class Knowledge {
  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly chunkTokens: number,
    /** Set when pgvector is available: its column's dimensions. */
    private readonly pgvectorDimensions?: number,
  ) {}

  /**
   * Stores a document idempotently. Unchanged text keeps its chunks and
   * embeddings (only metadata and owner are updated); changed text is
   * re-chunked, and every chunk whose text existed before in this document
   * keeps its embedding, so only new text is ever sent to `model.embed`.
   */
  async remember(request: MemoryRememberRequest): Promise<RememberResult> {
    const tenant = request.meta.tenant;
    const documentId = request.documentId ?? randomUUID();
    const textHash = sha(request.text);
    const userId = request.userId ?? null;
    return withTransaction(this.pool, async (client) => {
      const existing = await client.query<{ text_hash: string }>(
        "SELECT text_hash FROM documents WHERE tenant = $1 AND id = $2 FOR UPDATE",
        [tenant, documentId],
      );
      if (existing.rows[0]?.text_hash === textHash) {
        await client.query(
          "UPDATE documents SET metadata = $3, user_id = $4, kind = $5 WHERE tenant = $1 AND id = $2",
          [tenant, documentId, request.metadata, userId, request.kind],
        );
        const counts = await client.query<{ chunks: number; pending: number }>(
          `WITH updated AS (
             UPDATE chunks SET metadata = $3, user_id = $4, kind = $5
             WHERE tenant = $1 AND document_id = $2 RETURNING id, vector IS NULL AS pending
           ), signatures AS (
             UPDATE chunk_signatures s SET user_id = $4, kind = $5 FROM updated u
             WHERE s.tenant = $1 AND s.chunk_id = u.id
           )
           SELECT count(*)::int AS chunks, count(*) FILTER (WHERE pending)::int AS pending FROM updated`,
          [tenant, documentId, request.metadata, userId, request.kind],
        );
        return { documentId, chunks: counts.rows[0]?.chunks ?? 0, pending: counts.rows[0]?.pending ?? 0 };
      }
      const pieces = chunkText(request.text, this.chunkTokens);
      // with pgvector, a reused embedding also carries its indexed copy
      const pgvector = this.pgvectorDimensions !== undefined;
      await client.query(
        `INSERT INTO documents (tenant, id, user_id, kind, metadata, text_hash) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, id) DO UPDATE SET user_id = $3, kind = $4, metadata = $5, text_hash = $6`,
        [tenant, documentId, userId, request.kind, request.metadata, textHash],
      );
      // upsert by position; a chunk whose text this document had before takes that chunk's embedding
      const written = await client.query<{ pending: number }>(
        `WITH previous AS (
           SELECT DISTINCT ON (text_hash) text_hash, vector, bits, nonzero, dimensions${pgvector ? ", embedding_v" : ""} FROM chunks
           WHERE tenant = $1 AND document_id = $2 AND vector IS NOT NULL
         ), upserted AS (
           INSERT INTO chunks (tenant, id, document_id, user_id, kind, position, text, text_hash, tokens, metadata, vector, bits, nonzero, dimensions${pgvector ? ", embedding_v" : ""})
           SELECT $1, $2 || ':' || c.n, $2, $3, $4, c.n - 1, c.text, md5(c.text), c.tokens, $5, p.vector, p.bits, p.nonzero, p.dimensions${pgvector ? ", p.embedding_v" : ""}
           FROM unnest($6::text[], $7::int[]) WITH ORDINALITY AS c(text, tokens, n)
           LEFT JOIN previous p ON p.text_hash = md5(c.text)
           ON CONFLICT (tenant, id) DO UPDATE SET user_id = EXCLUDED.user_id, kind = EXCLUDED.kind,
             position = EXCLUDED.position, text = EXCLUDED.text, text_hash = EXCLUDED.text_hash,
             tokens = EXCLUDED.tokens, metadata = EXCLUDED.metadata, vector = EXCLUDED.vector,
             bits = EXCLUDED.bits, nonzero = EXCLUDED.nonzero, dimensions = EXCLUDED.dimensions
             ${pgvector ? ", embedding_v = EXCLUDED.embedding_v" : ""}
           RETURNING vector IS NULL AS pending
         )
         SELECT count(*) FILTER (WHERE pending)::int AS pending FROM upserted`,
        [
          tenant,
          documentId,
          userId,
          request.kind,
          request.metadata,
          pieces,
          pieces.map((piece) => countText(piece)),
        ],
      );
      await client.query("DELETE FROM chunks WHERE tenant = $1 AND document_id = $2 AND position >= $3", [
        tenant,
        documentId,
        pieces.length,
      ]);
      await client.query(
        `DELETE FROM chunk_signatures WHERE tenant = $1 AND chunk_id IN
           (SELECT id FROM chunks WHERE tenant = $1 AND document_id = $2)`,
        [tenant, documentId],
      );
      await client.query(
        `INSERT INTO chunk_signatures (tenant, chunk_id, user_id, kind, dimensions, bits, norm)
         SELECT tenant, id, user_id, kind, dimensions, bits, sqrt(nonzero) FROM chunks
         WHERE tenant = $1 AND document_id = $2 AND bits IS NOT NULL`,
        [tenant, documentId],
      );
      return { documentId, chunks: pieces.length, pending: written.rows[0]?.pending ?? 0 };
    });
  }

  /** Embeds the chunks of a document that have no embedding yet (the `index` job). Returns how many. */
  async index(tenant: string, documentId: string, meta: RequestMeta): Promise<number> {
    const rows = await this.pool.query<{ id: string; text: string; text_hash: string }>(
      `SELECT id, text, text_hash FROM chunks
       WHERE tenant = $1 AND document_id = $2 AND vector IS NULL ORDER BY position`,
      [tenant, documentId],
    );
    let embedded = 0;
    for (let start = 0; start < rows.rows.length; start += EMBED_BATCH) {
      const batch = rows.rows.slice(start, start + EMBED_BATCH);
      const reply = await this.bus.request(Endpoints.modelEmbed, {
        meta: { ...meta, deadline: Date.now() + 60_000 },
        input: batch.map((row) => row.text),
      });
      const vectors = reply.embeddings;
      const signatures = vectors.map((vector) => signature(vector));
      // the text_hash guard skips chunks rewritten by a newer remember while we embedded
      const updated = await this.pool.query(
        `WITH e AS (
           SELECT * FROM unnest($2::text[], $3::text[], $4::bytea[], $5::varbit[], $6::int[], $7::int[])
             AS e(id, text_hash, vector, bits, nonzero, dimensions)
         ), written AS (
           UPDATE chunks c SET vector = e.vector, bits = e.bits, nonzero = e.nonzero, dimensions = e.dimensions
           FROM e WHERE c.tenant = $1 AND c.id = e.id AND c.text_hash = e.text_hash
           RETURNING c.tenant, c.id, c.user_id, c.kind, e.dimensions, e.bits, e.nonzero
         )
         INSERT INTO chunk_signatures (tenant, chunk_id, user_id, kind, dimensions, bits, norm)
         SELECT tenant, id, user_id, kind, dimensions, bits, sqrt(nonzero) FROM written
         ON CONFLICT (tenant, chunk_id) DO UPDATE SET user_id = EXCLUDED.user_id, kind = EXCLUDED.kind,
           dimensions = EXCLUDED.dimensions, bits = EXCLUDED.bits, norm = EXCLUDED.norm`,
        [
          tenant,
          batch.map((row) => row.id),
          batch.map((row) => row.text_hash),
          vectors.map((vector) => encodeVector(vector)),
          signatures.map((entry) => entry.bits),
          signatures.map((entry) => entry.nonzero),
          vectors.map((vector) => vector.length),
        ],
      );
      embedded += updated.rowCount ?? 0;
      if (this.pgvectorDimensions !== undefined) {
        const fitting = vectors.flatMap((vector, index) =>
          vector.length === this.pgvectorDimensions ? [{ row: batch[index]!, vector }] : [],
        );
        await this.pool.query(
          `UPDATE chunks c SET embedding_v = e.embedding::vector
           FROM unnest($2::text[], $3::text[], $4::text[]) AS e(id, text_hash, embedding)
           WHERE c.tenant = $1 AND c.id = e.id AND c.text_hash = e.text_hash`,
          [
            tenant,
            fitting.map((entry) => entry.row.id),
            fitting.map((entry) => entry.row.text_hash),
            fitting.map((entry) => vectorLiteral(entry.vector)),
          ],
        );
      }
    }
    return embedded;
  }
}
