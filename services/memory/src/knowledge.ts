import { createHash, randomUUID } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import {
  Endpoints,
  type MemoryHit,
  type MemoryRememberRequest,
  type MemorySearchRequest,
  type RequestMeta,
} from "@agent-runtime/contracts";
import { withTransaction } from "@agent-runtime/stores";
import type pg from "pg";
import { lshBucket, nearbyBuckets } from "./lsh.js";
import { countText } from "./tokens.js";
import { vectorLiteral } from "./vector-store.js";

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

/** Splits text into chunks of about `chunkTokens` tokens on paragraph and sentence boundaries. */
export function chunkText(text: string, chunkTokens: number): string[] {
  const sentences = text
    .replace(/\r/g, "")
    .split(/(?<=[.!?])\s+|\n{2,}/)
    .map((part) => part.trim())
    .filter(Boolean);
  const chunks: string[] = [];
  let current: string[] = [];
  let tokens = 0;
  for (const sentence of sentences) {
    const size = countText(sentence);
    if (tokens + size > chunkTokens && current.length > 0) {
      chunks.push(current.join(" "));
      current = [];
      tokens = 0;
    }
    current.push(sentence);
    tokens += size;
  }
  if (current.length > 0) chunks.push(current.join(" "));
  return chunks;
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Long-term memory: documents, chunks with embeddings, hybrid retrieval. */
export class Knowledge {
  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly chunkTokens: number,
    /** Set when pgvector is available: its column's dimensions. */
    private readonly pgvectorDimensions?: number,
  ) {}

  get usesPgvector(): boolean {
    return this.pgvectorDimensions !== undefined;
  }

  async remember(
    request: MemoryRememberRequest,
  ): Promise<{ documentId: string; chunks: number; changed: boolean }> {
    const tenant = request.meta.tenant;
    const documentId = request.documentId ?? randomUUID();
    const textHash = sha(request.text);
    const existing = await this.pool.query<{ text_hash: string }>(
      "SELECT text_hash FROM documents WHERE tenant = $1 AND id = $2",
      [tenant, documentId],
    );
    if (existing.rows[0]?.text_hash === textHash) {
      await this.pool.query("UPDATE documents SET metadata = $3 WHERE tenant = $1 AND id = $2", [
        tenant,
        documentId,
        request.metadata,
      ]);
      const count = await this.pool.query(
        "SELECT count(*)::int AS n FROM chunks WHERE tenant = $1 AND document_id = $2",
        [tenant, documentId],
      );
      return { documentId, chunks: count.rows[0].n, changed: false };
    }
    const pieces = chunkText(request.text, this.chunkTokens);
    await withTransaction(this.pool, async (client) => {
      await client.query(
        `INSERT INTO documents (tenant, id, user_id, kind, metadata, text_hash) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, id) DO UPDATE SET user_id = $3, kind = $4, metadata = $5, text_hash = $6`,
        [tenant, documentId, request.userId ?? null, request.kind, request.metadata, textHash],
      );
      await client.query("DELETE FROM chunks WHERE tenant = $1 AND document_id = $2", [tenant, documentId]);
      await client.query(
        `INSERT INTO chunks (tenant, id, document_id, user_id, kind, position, text, text_hash, tokens, metadata)
         SELECT $1, $2 || ':' || n, $2, $3, $4, n - 1, text, md5(text), tokens, $5
         FROM unnest($6::text[], $7::int[]) WITH ORDINALITY AS c(text, tokens, n)`,
        [
          tenant,
          documentId,
          request.userId ?? null,
          request.kind,
          request.metadata,
          pieces,
          pieces.map((piece) => countText(piece)),
        ],
      );
    });
    return { documentId, chunks: pieces.length, changed: true };
  }

  /** Embeds the chunks of a document that have no embedding yet (the `index` job). */
  async index(tenant: string, documentId: string, meta: RequestMeta): Promise<number> {
    const rows = await this.pool.query<{ id: string; text: string }>(
      "SELECT id, text FROM chunks WHERE tenant = $1 AND document_id = $2 AND embedding IS NULL ORDER BY position",
      [tenant, documentId],
    );
    if (rows.rows.length === 0) return 0;
    const reply = await this.bus.request(Endpoints.modelEmbed, {
      meta,
      input: rows.rows.map((row) => row.text),
    });
    await this.pool.query(
      `UPDATE chunks SET embedding = e.embedding::real[], lsh = e.lsh
       FROM (SELECT unnest($3::text[]) AS id, unnest($4::text[]) AS embedding, unnest($5::smallint[]) AS lsh) e
       WHERE chunks.tenant = $1 AND chunks.document_id = $2 AND chunks.id = e.id`,
      [
        tenant,
        documentId,
        rows.rows.map((row) => row.id),
        reply.embeddings.map((vector) => `{${vector.join(",")}}`),
        reply.embeddings.map(lshBucket),
      ],
    );
    if (this.pgvectorDimensions !== undefined) {
      const fitting = reply.embeddings.flatMap((vector, index) =>
        vector.length === this.pgvectorDimensions ? [{ id: rows.rows[index]!.id, vector }] : [],
      );
      await this.pool.query(
        `UPDATE chunks SET embedding_v = e.embedding::vector
         FROM (SELECT unnest($3::text[]) AS id, unnest($4::text[]) AS embedding) e
         WHERE chunks.tenant = $1 AND chunks.document_id = $2 AND chunks.id = e.id`,
        [
          tenant,
          documentId,
          fitting.map((entry) => entry.id),
          fitting.map((entry) => vectorLiteral(entry.vector)),
        ],
      );
    }
    return rows.rows.length;
  }

  /**
   * Hybrid retrieval: full-text rank and embedding similarity, merged with
   * reciprocal rank fusion, filtered by tenant, user and metadata.
   */
  async search(request: MemorySearchRequest): Promise<MemoryHit[]> {
    const tenant = request.meta.tenant;
    const where = ["tenant = $1"];
    const params: unknown[] = [tenant];
    if (request.userId) {
      params.push(request.userId);
      where.push(`(user_id IS NULL OR user_id = $${params.length})`);
    }
    if (request.kinds?.length) {
      params.push(request.kinds);
      where.push(`kind = ANY($${params.length})`);
    }
    if (request.filter && Object.keys(request.filter).length > 0) {
      params.push(JSON.stringify(request.filter));
      where.push(`metadata @> $${params.length}::jsonb`);
    }
    const scope = where.join(" AND ");
    params.push(request.query);
    const queryParam = `$${params.length}`;
    const lexical = await this.pool.query<ChunkRow>(
      `SELECT id, document_id, kind, text, metadata, tokens, ts_rank_cd(tsv, websearch_to_tsquery('english', ${queryParam})) AS rank
       FROM chunks WHERE ${scope} AND tsv @@ websearch_to_tsquery('english', ${queryParam})
       ORDER BY rank DESC LIMIT 50`,
      params,
    );
    let semantic: (ChunkRow & { similarity: number })[] = [];
    try {
      const embedded = await this.bus.request(Endpoints.modelEmbed, {
        meta: request.meta,
        input: [request.query],
      });
      const queryVector = embedded.embeddings[0] ?? [];
      if (this.pgvectorDimensions !== undefined && queryVector.length === this.pgvectorDimensions) {
        // HNSW index: nearest neighbours in the database
        const nearest = await this.pool.query<ChunkRow & { similarity: number }>(
          `SELECT id, document_id, kind, text, metadata, tokens, 1 - (embedding_v <=> $${params.length}::vector) AS similarity
           FROM chunks WHERE ${scope} AND embedding_v IS NOT NULL
           ORDER BY embedding_v <=> $${params.length}::vector LIMIT 50`,
          [...params.slice(0, -1), vectorLiteral(queryVector)],
        );
        semantic = nearest.rows;
      } else {
        const select = (extra: string, extraParams: unknown[]) =>
          this.pool.query<ChunkRow & { embedding: number[] }>(
            `SELECT id, document_id, kind, text, metadata, tokens, embedding FROM chunks
             WHERE ${scope} AND embedding IS NOT NULL ${extra} LIMIT 5000`,
            [...params.slice(0, -1), ...extraParams],
          );
        // nearby LSH buckets first; a small corpus (few candidates) is read whole
        let candidates = await select(`AND lsh = ANY($${params.length}::smallint[])`, [
          nearbyBuckets(lshBucket(queryVector)),
        ]);
        if (candidates.rows.length < request.limit * 4) candidates = await select("", []);
        semantic = candidates.rows
          .map(({ embedding, ...row }) => ({ ...row, similarity: cosine(queryVector, embedding) }))
          .sort((a, b) => b.similarity - a.similarity)
          .slice(0, 50);
      }
    } catch {
      // no embeddings available: keyword ranking alone
    }
    const fused = new Map<string, { row: ChunkRow; score: number }>();
    const K = 60;
    lexical.rows.forEach((row, rank) => {
      fused.set(row.id, { row, score: 1 / (K + rank + 1) });
    });
    semantic
      .filter((row) => row.similarity > 0.2)
      .forEach((row, rank) => {
        const entry = fused.get(row.id) ?? { row, score: 0 };
        entry.score += 1 / (K + rank + 1);
        fused.set(row.id, entry);
      });
    const hits = [...fused.values()]
      .sort((a, b) => b.score - a.score)
      .filter((entry) => request.minScore === undefined || entry.score >= request.minScore)
      .map(({ row, score }) => ({
        id: row.id,
        documentId: row.document_id,
        kind: row.kind,
        text: row.text,
        score: Math.round(score * 1e6) / 1e6,
        metadata: row.metadata ?? {},
        tokens: row.tokens,
      }));
    const limited: MemoryHit[] = [];
    let tokens = 0;
    for (const hit of hits) {
      if (limited.length >= request.limit) break;
      if (request.budgetTokens !== undefined && tokens + hit.tokens > request.budgetTokens) continue;
      limited.push(hit);
      tokens += hit.tokens;
    }
    return limited;
  }
}

interface ChunkRow {
  id: string;
  document_id: string;
  kind: string;
  text: string;
  metadata: Record<string, unknown> | null;
  tokens: number;
}
