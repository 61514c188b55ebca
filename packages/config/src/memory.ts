import { z } from "zod";

export const MemorySection = z.object({
  memory: z
    .object({
      summarizeAfterTokens: z.number().int().positive().default(3000),
      keepRecentTurns: z.number().int().positive().default(6),
      hotTurns: z.number().int().positive().default(50),
      chunkTokens: z.number().int().positive().default(300),
      searchCacheTtlSeconds: z.number().int().nonnegative().default(30),
      minScore: z.number().default(0),
      /** Dimensions of the embedding model (the pgvector column and its HNSW index). */
      embeddingDimensions: z.number().int().positive().max(16_000).default(1536),
    })
    .default({
      summarizeAfterTokens: 3000,
      keepRecentTurns: 6,
      hotTurns: 50,
      chunkTokens: 300,
      searchCacheTtlSeconds: 30,
      minScore: 0,
      embeddingDimensions: 1536,
    }),
});
export type MemorySection = z.infer<typeof MemorySection>;
