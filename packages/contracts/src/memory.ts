import { createHash } from "node:crypto";
import { z } from "zod";
import { ChatMessage } from "./chat.js";
import { RequestMeta } from "./common.js";
import { StorableString } from "./storable.js";

/** A message as stored in a thread; `id` makes appends idempotent. */
export const StoredMessage = z.object({
  id: z.string().min(1).max(200),
  message: ChatMessage,
  createdAt: z.string().optional(),
  tokens: z.number().int().nonnegative().optional(),
});
export type StoredMessage = z.infer<typeof StoredMessage>;

/**
 * Whose long-term memories a search reads: `user` (default) the caller's own plus the tenant's
 * shared ones (without a user: shared ones only); `tenant` every memory of the tenant, for agents
 * configured for tenant-wide knowledge (`memory.scope: tenant`).
 */
export const MemoryScope = z.enum(["user", "tenant"]);
export type MemoryScope = z.infer<typeof MemoryScope>;

export const MemoryContextRequest = z.object({
  meta: RequestMeta,
  threadId: z.string().min(1).optional(),
  agent: z.string(),
  systemPrompt: z.string().optional(),
  /** The new input of this turn (or the whole history when the caller keeps none server-side). */
  input: z.array(ChatMessage),
  budgetTokens: z.number().int().positive(),
  model: z.string().optional(),
  retrieval: z.boolean().default(false),
  /** Whose memories retrieval reads (see `MemoryScope`). */
  scope: MemoryScope.default("user"),
  userId: z.string().optional(),
});
export type MemoryContextRequest = z.infer<typeof MemoryContextRequest>;

export const ContextSection = z.object({
  tokens: z.number().int().nonnegative(),
  items: z.number().int().nonnegative(),
  dropped: z.number().int().nonnegative().default(0),
});

export const MemoryContextReply = z.object({
  messages: z.array(ChatMessage),
  sections: z.object({
    system: ContextSection,
    summary: ContextSection,
    history: ContextSection,
    retrieved: ContextSection,
    input: ContextSection,
  }),
  totalTokens: z.number().int().nonnegative(),
  dropped: z.array(z.string()).default([]),
});
export type MemoryContextReply = z.infer<typeof MemoryContextReply>;

export const MemoryAppendRequest = z.object({
  meta: RequestMeta,
  threadId: z.string().min(1),
  agent: z.string().optional(),
  userId: z.string().optional(),
  messages: z.array(StoredMessage).min(1).max(500),
});
export type MemoryAppendRequest = z.infer<typeof MemoryAppendRequest>;

export const MemoryAppendReply = z.object({
  appended: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
});
export type MemoryAppendReply = z.infer<typeof MemoryAppendReply>;

export const MemoryMessagesRequest = z.object({
  meta: RequestMeta,
  threadId: z.string().min(1),
  limit: z.number().int().positive().max(1000).default(100),
  before: z.string().optional(),
});
export type MemoryMessagesRequest = z.infer<typeof MemoryMessagesRequest>;

export const MemoryMessagesReply = z.object({
  threadId: z.string(),
  messages: z.array(StoredMessage),
  found: z.boolean(),
});
export type MemoryMessagesReply = z.infer<typeof MemoryMessagesReply>;

export const MetadataFilter = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

export const MemorySearchRequest = z.object({
  meta: RequestMeta,
  query: z.string().min(1).max(8000),
  userId: z.string().optional(),
  scope: MemoryScope.default("user"),
  kinds: z.array(z.string()).optional(),
  filter: MetadataFilter.optional(),
  limit: z.number().int().positive().max(100).default(8),
  budgetTokens: z.number().int().positive().optional(),
  minScore: z.number().optional(),
});
export type MemorySearchRequest = z.infer<typeof MemorySearchRequest>;

export const MemoryHit = z.object({
  id: z.string(),
  documentId: z.string(),
  kind: z.string(),
  text: z.string(),
  score: z.number(),
  metadata: z.record(z.string(), z.unknown()).default({}),
  tokens: z.number().int().nonnegative(),
});
export type MemoryHit = z.infer<typeof MemoryHit>;

export const MemorySearchReply = z.object({ hits: z.array(MemoryHit), cached: z.boolean().default(false) });
export type MemorySearchReply = z.infer<typeof MemorySearchReply>;

/**
 * Whose public memory (`/v1/memories`, the `remember` tool) a document id names: `shared` (the
 * tenant's) or `u` + a hash of the user id, so the id itself never appears in a document id.
 */
export function memoryOwner(user: string | undefined): string {
  return user === undefined ? "shared" : `u${createHash("sha256").update(user).digest("hex").slice(0, 16)}`;
}

/** The prefix of the document ids of `user`'s public memories (or the tenant's shared ones). */
export function memoryIdPrefix(user: string | undefined): string {
  return `mem:${memoryOwner(user)}:`;
}

/** The document id of the public memory `id` of `user` (or of the tenant's shared ones). */
export function memoryDocumentId(user: string | undefined, id: string): string {
  return `${memoryIdPrefix(user)}${id}`;
}

export const MemoryRememberRequest = z.object({
  meta: RequestMeta,
  /** Stable id makes re-ingestion idempotent; unchanged text is not re-embedded. */
  documentId: z.string().min(1).max(200).optional(),
  userId: z.string().optional(),
  kind: z.enum(["fact", "note", "document", "profile"]).default("note"),
  text: z.string().min(1).max(2_000_000),
  metadata: z.record(z.string(), z.unknown()).default({}),
});
export type MemoryRememberRequest = z.infer<typeof MemoryRememberRequest>;

export const MemoryRememberReply = z.object({
  documentId: z.string(),
  chunks: z.number().int().nonnegative(),
  queued: z.boolean(),
});
export type MemoryRememberReply = z.infer<typeof MemoryRememberReply>;

export const MemoryForgetRequest = z
  .object({
    meta: RequestMeta,
    threadId: StorableString.min(1).max(200).optional(),
    userId: StorableString.min(1).max(200).optional(),
    documentId: StorableString.min(1).max(300).optional(),
  })
  .refine((value) => value.threadId || value.userId || value.documentId, {
    message: "name a threadId, userId or documentId to forget",
  });
export type MemoryForgetRequest = z.infer<typeof MemoryForgetRequest>;

export const MemoryForgetReply = z.object({
  deleted: z.object({
    messages: z.number().int().nonnegative(),
    threads: z.number().int().nonnegative(),
    documents: z.number().int().nonnegative(),
    chunks: z.number().int().nonnegative(),
  }),
  /** The threads deleted (the first 5000: their ids must fit one reply). */
  threadIds: z.array(z.string()).default([]),
});
export type MemoryForgetReply = z.infer<typeof MemoryForgetReply>;

/**
 * One page of a tenant's long-term memories (documents), newest first: those whose id starts with
 * `idPrefix` and, when `userId` is given, that belong to that user.
 */
export const MemoryListRequest = z.object({
  meta: RequestMeta,
  idPrefix: z.string().min(1).max(200),
  userId: z.string().max(200).optional(),
  kinds: z.array(z.string()).optional(),
  limit: z.number().int().positive().max(100).default(20),
  /** `nextCursor` of the previous page. */
  cursor: z.string().max(400).optional(),
  /** Characters of each document's text returned at most (its chunks joined). */
  maxTextChars: z.number().int().positive().max(100_000).default(4000),
});
export type MemoryListRequest = z.infer<typeof MemoryListRequest>;

export const MemoryDocument = z.object({
  documentId: z.string(),
  userId: z.string().nullable(),
  kind: z.string(),
  text: z.string(),
  /** The text was cut at `maxTextChars`. */
  truncated: z.boolean(),
  chunks: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  metadata: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
});
export type MemoryDocument = z.infer<typeof MemoryDocument>;

export const MemoryListReply = z.object({
  documents: z.array(MemoryDocument),
  nextCursor: z.string().nullable(),
});
export type MemoryListReply = z.infer<typeof MemoryListReply>;

/** Non-critical work on the `memory.jobs` stream. */
export const MemoryJob = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("summarize"),
    tenant: z.string(),
    threadId: z.string(),
    requestedAt: z.number(),
  }),
  z.object({ kind: z.literal("index"), tenant: z.string(), documentId: z.string(), requestedAt: z.number() }),
]);
export type MemoryJob = z.infer<typeof MemoryJob>;
