import { z } from "zod";

const MemorySettings = z.object({
  /** Unsummarised history (tokens) past which a summary job is queued. */
  summarizeAfterTokens: z.number().int().positive().default(3000),
  /** Newest messages a summary never folds in. */
  keepRecentTurns: z.number().int().positive().default(6),
  /** Newest unsummarised messages kept in the Redis hot copy (and read on a miss). */
  hotTurns: z.number().int().positive().default(50),
  chunkTokens: z.number().int().positive().default(300),
  searchCacheTtlSeconds: z.number().int().nonnegative().default(30),
  /** Relevance floor on the fused search score (0..1; 1 = first in both rankings). */
  minScore: z.number().min(0).max(1).default(0),
  /** Cosine similarity below which an embedding match does not count. */
  minSimilarity: z.number().min(-1).max(1).default(0.25),
  /** Largest share of the context budget (after system prompt and input) the summary may take. */
  summaryShare: z.number().min(0).max(1).default(0.5),
  /** Largest share of what is left after the summary that retrieved memories may take. */
  retrievalShare: z.number().min(0).max(1).default(0.25),
  /** Memories retrieved for a context when the request asks for retrieval. */
  retrievalLimit: z.number().int().positive().max(100).default(8),
  /** Dimensions of the embedding model (the pgvector column and its HNSW index). */
  embeddingDimensions: z.number().int().positive().max(16_000).default(1536),
});

export const MemorySection = z.object({
  memory: MemorySettings.default(MemorySettings.parse({})),
});
export type MemorySection = z.infer<typeof MemorySection>;
