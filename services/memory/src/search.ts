import type { Bus } from "@agent-runtime/bus";
import { Endpoints, type MemoryHit, type MemorySearchRequest } from "@agent-runtime/contracts";
import type pg from "pg";
import { cosine, decodeVector, queryMasks } from "./vector-math.js";
import type { Pgvector } from "./vector-store.js";
import { vectorLiteral } from "./vector-store.js";

/** Reciprocal rank fusion constant (Cormack et al.); scores are reported normalised to 0..1. */
const RRF_K = 60;
const PER_LEG = 50;

export interface SearchOptions {
  /** Fused score below which hits are dropped (0..1; 1 = first in both rankings). */
  minScore: number;
  /** Cosine similarity below which an embedding match does not count as relevant. */
  minSimilarity: number;
}

interface ChunkRow {
  id: string;
  document_id: string;
  kind: string;
  text: string;
  metadata: Record<string, unknown> | null;
  tokens: number;
}

export interface SearchOutcome {
  hits: MemoryHit[];
  /** False when the query could not be embedded (keyword ranking alone). */
  semantic: boolean;
}

/**
 * Hybrid retrieval: PostgreSQL full-text ranking and embedding similarity,
 * merged with reciprocal rank fusion, scoped to the tenant (and the user's
 * own plus shared memories), filtered by kind and metadata, capped by count,
 * token budget and a relevance floor.
 */
export class HybridSearch {
  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly options: SearchOptions,
    private readonly pgvector?: Pgvector,
  ) {}

  async search(request: MemorySearchRequest): Promise<SearchOutcome> {
    const scope = buildScope(request);
    const [lexical, semantic] = await Promise.all([
      this.lexical(request, scope),
      this.semantic(request, scope),
    ]);
    const fused = new Map<string, { row: ChunkRow; score: number }>();
    lexical.forEach((row, rank) => {
      fused.set(row.id, { row, score: 1 / (RRF_K + rank + 1) });
    });
    (semantic ?? []).forEach((row, rank) => {
      const entry = fused.get(row.id) ?? { row, score: 0 };
      entry.score += 1 / (RRF_K + rank + 1);
      fused.set(row.id, entry);
    });
    const best = 2 / (RRF_K + 1);
    const floor = request.minScore ?? this.options.minScore;
    const hits: MemoryHit[] = [];
    let tokens = 0;
    for (const { row, score } of [...fused.values()].sort((a, b) => b.score - a.score)) {
      if (hits.length >= request.limit) break;
      const normalised = Math.round((score / best) * 1e4) / 1e4;
      if (normalised < floor) break;
      if (request.budgetTokens !== undefined && tokens + row.tokens > request.budgetTokens) continue;
      tokens += row.tokens;
      hits.push({
        id: row.id,
        documentId: row.document_id,
        kind: row.kind,
        text: row.text,
        score: normalised,
        metadata: row.metadata ?? {},
        tokens: row.tokens,
      });
    }
    return { hits, semantic: semantic !== undefined };
  }

  /** Every term when enough chunks have them all, otherwise any term (ranked by how many match). */
  private async lexical(request: MemorySearchRequest, scope: Scope): Promise<ChunkRow[]> {
    const params = [...scope.params, request.query];
    const query = `$${params.length}`;
    const run = (tsquery: string) =>
      this.pool.query<ChunkRow>(
        `SELECT c.id, c.document_id, c.kind, c.text, c.metadata, c.tokens
         FROM chunks c CROSS JOIN (SELECT ${tsquery} AS q) query
         WHERE ${scope.sql("c")} AND c.tsv @@ query.q
         ORDER BY ts_rank(c.tsv, query.q) DESC, c.id LIMIT ${PER_LEG}`,
        params,
      );
    const all = await run(`websearch_to_tsquery('english', ${query})`);
    if (all.rows.length >= request.limit) return all.rows;
    const any = await run(
      `nullif(replace(plainto_tsquery('english', ${query})::text, ' & ', ' | '), '')::tsquery`,
    );
    const seen = new Set(all.rows.map((row) => row.id));
    return [...all.rows, ...any.rows.filter((row) => !seen.has(row.id))].slice(0, PER_LEG);
  }

  /** Nearest chunks by cosine similarity above the floor, best first; undefined when the query has no embedding. */
  private async semantic(
    request: MemorySearchRequest,
    scope: Scope,
  ): Promise<(ChunkRow & { similarity: number })[] | undefined> {
    let queryVector: number[];
    try {
      const remaining = request.meta.deadline - Date.now();
      const reply = await this.bus.request(
        Endpoints.modelEmbed,
        { meta: request.meta, input: [request.query] },
        { timeoutMs: Math.max(100, Math.min(remaining, 5000)) },
      );
      queryVector = reply.embeddings[0] ?? [];
    } catch {
      return undefined; // model-proxy unavailable: keyword ranking alone
    }
    if (queryVector.length === 0) return undefined;
    const rows =
      this.pgvector && queryVector.length === this.pgvector.dimensions
        ? await this.nearestPgvector(queryVector, scope, this.pgvector)
        : await this.nearestSignatures(queryVector, scope, request.limit);
    return rows
      .filter((row) => row.similarity >= this.options.minSimilarity)
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, PER_LEG);
  }

  /**
   * Stock PostgreSQL: scan the narrow signature table ranking by the ternary
   * dot product (C-speed `bit_count(bits & mask)`), then re-rank the best
   * candidates by exact cosine over their float32 vectors. One round trip.
   */
  private async nearestSignatures(
    queryVector: number[],
    scope: Scope,
    limit: number,
  ): Promise<(ChunkRow & { similarity: number })[]> {
    const candidates = Math.min(1000, Math.max(200, limit * 32));
    const masks = queryMasks(queryVector);
    const params = [...scope.params, masks.same, masks.opposite, queryVector.length, candidates];
    const n = scope.params.length;
    const result = await this.pool.query<ChunkRow & { vector: Buffer }>(
      `WITH candidates AS (
         SELECT s.chunk_id FROM chunk_signatures s
         WHERE ${scope.signatureSql("s")} AND s.dimensions = $${n + 3}
         ORDER BY (bit_count(s.bits & $${n + 1}::varbit) - bit_count(s.bits & $${n + 2}::varbit))::real / s.norm DESC
         LIMIT $${n + 4}
       )
       SELECT c.id, c.document_id, c.kind, c.text, c.metadata, c.tokens, c.vector
       FROM candidates JOIN chunks c ON c.tenant = $1 AND c.id = candidates.chunk_id
       WHERE c.vector IS NOT NULL`,
      params,
    );
    return result.rows.map(({ vector, ...row }) => ({
      ...row,
      similarity: cosine(queryVector, decodeVector(vector)),
    }));
  }

  /** pgvector: the HNSW index, letting filtered scans iterate on versions that can. */
  private async nearestPgvector(
    queryVector: number[],
    scope: Scope,
    pgvector: Pgvector,
  ): Promise<(ChunkRow & { similarity: number })[]> {
    const params = [...scope.params, vectorLiteral(queryVector)];
    const vector = `$${params.length}::vector`;
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SET LOCAL hnsw.ef_search = 100");
      if (pgvector.iterativeScan) await client.query("SET LOCAL hnsw.iterative_scan = relaxed_order");
      const result = await client.query<ChunkRow & { similarity: number }>(
        `SELECT c.id, c.document_id, c.kind, c.text, c.metadata, c.tokens, 1 - (c.embedding_v <=> ${vector}) AS similarity
         FROM chunks c WHERE ${scope.sql("c")} AND c.embedding_v IS NOT NULL
         ORDER BY c.embedding_v <=> ${vector} LIMIT ${PER_LEG}`,
        params,
      );
      await client.query("COMMIT");
      return result.rows.map((row) => ({ ...row, similarity: Number(row.similarity) }));
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}

interface Scope {
  params: unknown[];
  /** Conditions on a `chunks` alias. */
  sql(alias: string): string;
  /** Conditions on a `chunk_signatures` alias (metadata through its chunk). */
  signatureSql(alias: string): string;
}

/**
 * Tenant always. Scope `user` (the default): with a user, that user's memories
 * plus the tenant's shared ones; without a user, only shared ones (one user's
 * facts never reach another). Scope `tenant` (an agent configured for
 * tenant-wide knowledge): every memory of the tenant.
 */
function buildScope(request: MemorySearchRequest): Scope {
  const params: unknown[] = [request.meta.tenant];
  const common: ((alias: string) => string)[] = [(a) => `${a}.tenant = $1`];
  if (request.scope !== "tenant" && request.userId) {
    params.push(request.userId);
    const index = params.length;
    common.push((a) => `(${a}.user_id IS NULL OR ${a}.user_id = $${index})`);
  } else if (request.scope !== "tenant") {
    common.push((a) => `${a}.user_id IS NULL`);
  }
  if (request.kinds?.length) {
    params.push(request.kinds);
    const index = params.length;
    common.push((a) => `${a}.kind = ANY($${index}::text[])`);
  }
  let metadata: ((alias: string) => string) | undefined;
  if (request.filter && Object.keys(request.filter).length > 0) {
    params.push(JSON.stringify(request.filter));
    const index = params.length;
    metadata = (a) => `${a}.metadata @> $${index}::jsonb`;
  }
  return {
    params,
    sql: (alias) => [...common, ...(metadata ? [metadata] : [])].map((part) => part(alias)).join(" AND "),
    signatureSql: (alias) =>
      [
        ...common.map((part) => part(alias)),
        ...(metadata
          ? [
              `EXISTS (SELECT 1 FROM chunks m WHERE m.tenant = ${alias}.tenant AND m.id = ${alias}.chunk_id AND ${metadata("m")})`,
            ]
          : []),
      ].join(" AND "),
  };
}
