import { randomUUID } from "node:crypto";
import {
  Endpoints,
  idPattern,
  type MemoryHit,
  memoryDocumentId,
  memoryIdPrefix,
  RuntimeError,
} from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { parseBody } from "./http-errors.js";
import type { ApiKey } from "./keys.js";
import { requireScope } from "./keys.js";
import type { RouteDeps } from "./route-deps.js";
import { metaFor } from "./runs-route.js";

/** A memory id a caller may choose. */
export const MEMORY_ID = idPattern(100);
const User = z.string().min(1).max(200);
const MemoryKind = z.enum(["fact", "note", "document", "profile"]);

export const CreateMemoryBody = z.object({
  /** The memory or document; long text is split into chunks and embedded. */
  text: z.string().min(1).max(2_000_000),
  /** The end user it belongs to; absent = shared by the whole tenant (admin keys only). */
  user: User.optional(),
  /** Your own id: adding the same id again replaces that memory (unchanged text is not embedded again). */
  id: z.string().regex(MEMORY_ID, "1-100 letters, digits, '_', '.', ':' or '-'").optional(),
  kind: MemoryKind.default("note"),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
export type CreateMemoryBody = z.infer<typeof CreateMemoryBody>;

export const SearchMemoriesQuery = z.object({
  q: z.string().min(1).max(8000),
  user: User.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(8),
  /** Comma-separated kinds to search (`fact,note`). */
  kind: z
    .string()
    .max(200)
    .transform((value) => value.split(",").map((kind) => kind.trim()))
    .pipe(z.array(MemoryKind))
    .optional(),
});

export const MemoryOwnerQuery = z.object({ user: User.optional() });

export const ListMemoriesQuery = z.object({
  user: User.optional().describe(
    "whose memories: that user's own; absent = the tenant's shared ones (admin keys only)",
  ),
  kind: SearchMemoriesQuery.shape.kind.describe("comma-separated kinds to list (`fact,note`)"),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe("memories per page"),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_=-]{1,400}$/, "not a cursor from next_cursor")
    .optional()
    .describe("`next_cursor` of the previous page"),
});

/**
 * Whose memory a document is, in its stored id: `mem:<owner>:<id>`, the owner a hash of the user
 * (or `shared`). So one user's id can never name, replace or delete another user's memory, and a
 * client may choose its own ids.
 */
/** Characters of a memory's text a list shows at most (`text_truncated` says when it was cut). */
const LIST_TEXT_CHARS = 4000;

/** The public id of a stored document (documents added over NATS keep their own). */
function publicId(documentId: string): string {
  const match = /^mem:(?:shared|u[0-9a-f]{16}):(.+)$/.exec(documentId);
  return match?.[1] ?? documentId;
}

/** Tenant-shared memories (and every user's at once) are for admin keys; a user's own are for any key. */
function requireOwner(key: ApiKey, user: string | undefined): void {
  if (user === undefined) requireScope(key, "admin");
}

function memoryOf(hit: MemoryHit) {
  return {
    id: publicId(hit.documentId),
    object: "memory",
    shared: hit.documentId.startsWith("mem:shared:"),
    kind: hit.kind,
    text: hit.text,
    score: hit.score,
    metadata: hit.metadata,
  };
}

/**
 * Long-term memory for end users: `POST /v1/memories`, `GET /v1/memories` (newest first, paged),
 * `GET /v1/memories/search?q=`, `DELETE /v1/memories/:id`, each within the key's tenant and the `user` given (the user's own
 * memories plus the tenant's shared ones when searching), through the memory service. Without a
 * `user` they act on the tenant's shared memories (search: every user's), with an admin key.
 */
export function registerMemoryRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post("/v1/memories", async (request, reply) => {
    const key = await deps.authenticate(request, "runs");
    const body = parseBody(CreateMemoryBody, request.body);
    requireOwner(key, body.user);
    await deps.limit(key.tenant, body.user);
    const id = body.id ?? `mem_${randomUUID()}`;
    const result = await deps.bus.request(Endpoints.memoryRemember, {
      meta: { ...metaFor(key.tenant, 30_000), ...(body.user ? { userId: body.user } : {}) },
      documentId: memoryDocumentId(body.user, id),
      ...(body.user ? { userId: body.user } : {}),
      kind: body.kind,
      text: body.text,
      metadata: body.metadata,
    });
    return reply.code(201).send({
      id,
      object: "memory",
      user: body.user ?? null,
      kind: body.kind,
      chunks: result.chunks,
      /** Whether embedding it is still queued (it is found by keywords until then). */
      indexing: result.queued,
    });
  });

  app.get("/v1/memories", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const query = parseBody(ListMemoriesQuery, request.query);
    // without a user: the tenant's shared memories, for admin keys only
    requireOwner(key, query.user);
    await deps.limit(key.tenant, query.user);
    const result = await deps.bus.request(Endpoints.memoryList, {
      meta: { ...metaFor(key.tenant), ...(query.user ? { userId: query.user } : {}) },
      idPrefix: memoryIdPrefix(query.user),
      ...(query.user ? { userId: query.user } : {}),
      ...(query.kind ? { kinds: query.kind } : {}),
      limit: query.limit,
      ...(query.cursor ? { cursor: query.cursor } : {}),
      maxTextChars: LIST_TEXT_CHARS,
    });
    return {
      object: "list",
      data: result.documents.map((document) => ({
        id: publicId(document.documentId),
        object: "memory",
        user: document.userId,
        shared: document.documentId.startsWith("mem:shared:"),
        kind: document.kind,
        text: document.text,
        text_truncated: document.truncated,
        chunks: document.chunks,
        metadata: document.metadata,
        created_at: document.createdAt,
      })),
      next_cursor: result.nextCursor,
    };
  });

  app.get("/v1/memories/search", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const query = parseBody(SearchMemoriesQuery, request.query);
    // without a user: every user's memories of the tenant, for admin keys only
    requireOwner(key, query.user);
    await deps.limit(key.tenant, query.user);
    const result = await deps.bus.request(Endpoints.memorySearch, {
      meta: { ...metaFor(key.tenant), ...(query.user ? { userId: query.user } : {}) },
      query: query.q,
      scope: query.user ? "user" : "tenant",
      ...(query.user ? { userId: query.user } : {}),
      ...(query.kind ? { kinds: query.kind } : {}),
      limit: query.limit,
    });
    return { object: "list", data: result.hits.map(memoryOf) };
  });

  app.delete("/v1/memories/:id", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const id = (request.params as { id?: string }).id ?? "";
    if (!MEMORY_ID.test(id)) {
      throw new RuntimeError("validation", "invalid memory id in the path", {
        retryable: false,
        details: [{ path: "id", message: "1-100 letters, digits, '_', '.', ':' or '-'" }],
      });
    }
    const { user } = parseBody(MemoryOwnerQuery, request.query);
    requireOwner(key, user);
    await deps.limit(key.tenant, user);
    const result = await deps.bus.request(Endpoints.memoryForget, {
      meta: metaFor(key.tenant),
      documentId: memoryDocumentId(user, id),
      ...(user ? { userId: user } : {}),
    });
    if (result.deleted.documents === 0)
      throw new RuntimeError(
        "not_found",
        `no memory ${id}${user ? ` of user ${user}` : " shared by the tenant"}`,
        {
          retryable: false,
        },
      );
    return { id, object: "memory", deleted: true };
  });
}
