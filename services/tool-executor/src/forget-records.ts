import { createHash } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import {
  Endpoints,
  QueueGroups,
  RuntimeError,
  type ToolForgetReply,
  type ToolForgetRequest,
} from "@agent-runtime/contracts";
import { deleteScanned, globEscape, type Redis, redisReady } from "@agent-runtime/stores";
import type { Logger } from "@agent-runtime/telemetry";
import type pg from "pg";

/**
 * The cache scope of a personal tool's results for an end user, as the executor names it
 * (`user-` + the first 32 hex digits of sha256 of the user id as JSON; "" for no user).
 */
export function userScope(userId: string): string {
  return `user-${createHash("sha256").update(JSON.stringify(userId)).digest("hex").slice(0, 32)}`;
}

/**
 * `tool.forget`: drops what the tool executor keeps of some runs and end users:
 * - the idempotency records of the runs' side-effecting calls, replies included (`tool_calls`;
 *   their keys are `<runId>:<step>:<position>`): a forgotten run is over and is never resumed;
 * - cached results (`tcache:<tenant>:<scope>:<tool>:<hash>`) kept for the users named, of the
 *   tools named (or of every tool), and the tenant-wide results of the tools named.
 * Redis down: `unavailable` (retryable) before anything is deleted.
 */
export async function forgetToolRecords(
  deps: { pool: pg.Pool; redis: Redis; prefix: string },
  request: ToolForgetRequest,
): Promise<ToolForgetReply> {
  const tenant = request.meta.tenant;
  const scopes = new Set(request.userIds.map(userScope));
  const tools = request.tools ? new Set(request.tools) : undefined;
  const touchesCache = scopes.size > 0 || (tools !== undefined && tools.size > 0);
  if (touchesCache && !redisReady(deps.redis))
    throw new RuntimeError(
      "unavailable",
      "the tool result cache cannot be reached to forget; retry shortly",
      {
        retryAfterMs: 1000,
      },
    );
  let cached = 0;
  if (touchesCache) {
    const cachePrefix = `${deps.prefix}tcache:${tenant}:`;
    try {
      cached = await deleteScanned(deps.redis, `${globEscape(cachePrefix)}*`, (key) => {
        const [scope = "", tool = ""] = key.slice(cachePrefix.length).split(":");
        if (scope === "shared") return tools?.has(tool) ?? false;
        return scopes.has(scope) && (tools === undefined || tools.has(tool));
      });
    } catch (error) {
      throw new RuntimeError("unavailable", "the tool result cache failed while forgetting; retry shortly", {
        retryAfterMs: 1000,
        cause: error,
      });
    }
  }
  let records = 0;
  if (request.runIds.length > 0) {
    const result = await deps.pool.query(
      `DELETE FROM tool_calls t USING unnest($2::text[]) AS r(run_id)
        WHERE t.tenant = $1 AND left(t.idempotency_key, length(r.run_id) + 1) = r.run_id || ':'`,
      [tenant, request.runIds],
    );
    records = result.rowCount ?? 0;
  }
  return { deleted: { records, cached } };
}

/** Serves `tool.forget` in the tool executor's queue group, a few at a time. */
export function serveToolForget(
  bus: Bus,
  deps: { pool: pg.Pool; redis: Redis; prefix: string },
  logger: Logger,
  maxInFlight = 4,
): void {
  bus.serve(
    Endpoints.toolForget,
    async (request) => {
      const reply = await forgetToolRecords(deps, request);
      logger.info({ tenant: request.meta.tenant, deleted: reply.deleted }, "forgot tool records");
      return reply;
    },
    { queue: QueueGroups.toolExecutor, maxInFlight },
  );
}
