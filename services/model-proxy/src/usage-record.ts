import { randomUUID } from "node:crypto";
import type { ModelUsageRecord, RequestMeta } from "@agent-runtime/contracts";

export type UsageFields = Omit<
  ModelUsageRecord,
  "v" | "id" | "ts" | "tenant" | "userId" | "runId" | "agent" | "requestId"
>;

/** One usage record for `usage.model`, carrying who asked (tenant, user, run, agent). */
export function usageRecord(meta: RequestMeta, fields: UsageFields): ModelUsageRecord {
  return {
    v: 1,
    id: randomUUID(),
    ts: Date.now(),
    tenant: meta.tenant,
    ...(meta.userId ? { userId: meta.userId } : {}),
    ...(meta.runId ? { runId: meta.runId } : {}),
    ...(meta.agent ? { agent: meta.agent } : {}),
    requestId: meta.requestId,
    ...fields,
  };
}
