import { randomUUID } from "node:crypto";
import { EmbeddingsRequest, Endpoints, RuntimeError } from "@agent-runtime/contracts";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseBody } from "./http-errors.js";
import type { ModelCatalog } from "./model-catalog.js";
import { setRateHeaders } from "./response-headers.js";
import type { RouteDeps } from "./route-deps.js";

const EMBED_TIMEOUT_MS = 60_000;

/** A vector as OpenAI's `base64` encoding: little-endian float32s. */
function base64Of(vector: readonly number[]): string {
  const floats = new Float32Array(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

/**
 * `POST /v1/embeddings` — OpenAI wire format through the model proxy's `model.embed` (its cache,
 * provider limits and usage accounting). `model` names an embedding model the proxy serves, or is
 * left out for the configured one.
 */
export function registerEmbeddingsRoute(app: FastifyInstance, deps: RouteDeps, catalog: ModelCatalog): void {
  app.post("/v1/embeddings", async (request: FastifyRequest, reply: FastifyReply) => {
    const key = await deps.authenticate(request, "chat");
    const body = parseBody(EmbeddingsRequest, request.body);
    const served = await catalog.models(key.tenant);
    const modelName = body.model ?? served.embeddingModel;
    const model = modelName ? served.models.find((entry) => entry.name === modelName) : undefined;
    if (!modelName)
      throw new RuntimeError("unavailable", "no embedding model is configured", { retryable: false });
    if (!model) {
      throw new RuntimeError(
        "not_found",
        `no embedding model named "${modelName}"; GET /v1/models lists them`,
        {
          retryable: false,
          details: [{ path: "model", message: "unknown model" }],
        },
      );
    }
    if (!model.capabilities.includes("embeddings")) {
      throw new RuntimeError("validation", `"${modelName}" is not an embedding model`, {
        retryable: false,
        details: [{ path: "model", message: "not an embedding model" }],
      });
    }
    const release = await deps.limit(key.tenant, body.user);
    setRateHeaders(reply, release);
    const input = typeof body.input === "string" ? [body.input] : body.input;
    const embedded = await deps.bus.request(Endpoints.modelEmbed, {
      meta: {
        v: 1,
        tenant: key.tenant,
        requestId: `emb_${randomUUID()}`,
        ...(body.user ? { userId: body.user } : {}),
        deadline: Date.now() + EMBED_TIMEOUT_MS,
      },
      model: modelName,
      input,
    });
    return {
      object: "list",
      data: embedded.embeddings.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: body.encoding_format === "base64" ? base64Of(vector) : vector,
      })),
      model: modelName,
      usage: { prompt_tokens: embedded.usage.promptTokens, total_tokens: embedded.usage.promptTokens },
    };
  });
}
