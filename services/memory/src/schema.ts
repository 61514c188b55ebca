/**
 * Tables of the memory service, created idempotently at start (in the
 * service's schema, under an advisory lock so replicas can start together).
 *
 * Embeddings live in two places on stock PostgreSQL: the full vector as
 * float32 bytes on the chunk (read only to re-rank a few candidates) and a
 * ternary signature in the narrow `chunk_signatures` table, whose dot
 * product with the query's (`bit_count(bits & mask)`) is scanned at C speed.
 */
export const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS threads (
     tenant text NOT NULL,
     id text NOT NULL,
     user_id text,
     agent text,
     summary text,
     summary_upto bigint NOT NULL DEFAULT 0,
     summary_tokens integer NOT NULL DEFAULT 0,
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant, id)
   )`,
  "CREATE INDEX IF NOT EXISTS threads_user ON threads (tenant, user_id)",
  `CREATE TABLE IF NOT EXISTS messages (
     tenant text NOT NULL,
     thread_id text NOT NULL,
     id text NOT NULL,
     seq bigserial,
     message jsonb NOT NULL,
     tokens integer NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant, id),
     FOREIGN KEY (tenant, thread_id) REFERENCES threads (tenant, id) ON DELETE CASCADE
   )`,
  "CREATE INDEX IF NOT EXISTS messages_thread ON messages (tenant, thread_id, seq)",
  `CREATE TABLE IF NOT EXISTS documents (
     tenant text NOT NULL,
     id text NOT NULL,
     user_id text,
     kind text NOT NULL,
     metadata jsonb NOT NULL DEFAULT '{}',
     text_hash text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant, id)
   )`,
  "CREATE INDEX IF NOT EXISTS documents_user ON documents (tenant, user_id)",
  `CREATE TABLE IF NOT EXISTS chunks (
     tenant text NOT NULL,
     id text NOT NULL,
     document_id text NOT NULL,
     user_id text,
     kind text NOT NULL,
     position integer NOT NULL,
     text text NOT NULL,
     text_hash text NOT NULL,
     tokens integer NOT NULL,
     metadata jsonb NOT NULL DEFAULT '{}',
     tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
     PRIMARY KEY (tenant, id),
     FOREIGN KEY (tenant, document_id) REFERENCES documents (tenant, id) ON DELETE CASCADE
   )`,
  /** float32 little-endian; NULL until the index job embedded the chunk. */
  "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS vector bytea",
  /** Ternary signature (see vector-math.ts); copied to `chunk_signatures` for the scan. */
  "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS bits bit varying",
  "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS nonzero integer",
  "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS dimensions integer",
  "CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING gin (tsv)",
  "CREATE INDEX IF NOT EXISTS chunks_document ON chunks (tenant, document_id, position)",
  "CREATE INDEX IF NOT EXISTS chunks_scope ON chunks (tenant, user_id)",
  "CREATE INDEX IF NOT EXISTS chunks_metadata ON chunks USING gin (metadata jsonb_path_ops)",
  `CREATE TABLE IF NOT EXISTS chunk_signatures (
     tenant text NOT NULL,
     chunk_id text NOT NULL,
     user_id text,
     kind text NOT NULL,
     dimensions integer NOT NULL,
     bits bit varying NOT NULL,
     norm real NOT NULL,
     PRIMARY KEY (tenant, chunk_id),
     FOREIGN KEY (tenant, chunk_id) REFERENCES chunks (tenant, id) ON DELETE CASCADE
   )`,
];
