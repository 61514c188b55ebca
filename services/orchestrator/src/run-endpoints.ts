import type { Bus } from "@agent-runtime/bus";
import { Endpoints, QueueGroups, RuntimeError, Subjects } from "@agent-runtime/contracts";
import { z } from "zod";
import { EventPublisher, emptyUsage } from "./run-events.js";
import type { RunStore } from "./run-store.js";

export const CancelNotice = z.object({ reason: z.string() });

/**
 * `run.get`, `run.list` and `run.cancel`, tenant-scoped (another tenant's run does not exist for
 * the caller). A cancel marks the run cancelled and broadcasts `run.<id>.cancelled` so the worker
 * running it stops between steps and abandons its in-flight calls.
 */
export function serveRunEndpoints(bus: Bus, store: RunStore, maxInFlight: number): void {
  const options = { queue: QueueGroups.orchestrator, maxInFlight };
  bus.serve(
    Endpoints.runGet,
    async (request) => ({ run: await store.get(request.meta.tenant, request.runId) }),
    options,
  );
  bus.serve(
    Endpoints.runList,
    (request) =>
      store.list(request.meta.tenant, {
        limit: request.limit,
        ...(request.threadId ? { threadId: request.threadId } : {}),
        ...(request.status ? { status: request.status } : {}),
        ...(request.agent ? { agent: request.agent } : {}),
        ...(request.cursor ? { cursor: request.cursor } : {}),
      }),
    options,
  );
  bus.serve(
    Endpoints.runRegister,
    async (request) => {
      if (request.run.tenant !== request.meta.tenant)
        throw new RuntimeError("forbidden", "a run is registered by its own tenant", { retryable: false });
      await store.register(request.run);
      return { runId: request.run.runId };
    },
    options,
  );
  bus.serve(
    Endpoints.runCancel,
    async (request) => {
      const result = await store.cancel(request.meta.tenant, request.runId);
      if (!result.found) {
        // a run younger than its start write (START_WRITE_DELAY_MS) has no row yet: its worker
        // still hears the cancel; a run whose row is there is another tenant's and hears nothing
        if ((await store.status(request.runId)) === undefined)
          bus.publish(Subjects.runCancelled(request.runId), CancelNotice, {
            reason: request.reason ?? "cancelled",
          });
        throw new RuntimeError("not_found", `no run ${request.runId}`);
      }
      if (result.cancelled) {
        bus.publish(Subjects.runCancelled(request.runId), CancelNotice, {
          reason: request.reason ?? "cancelled",
        });
        // no worker holds a queued run: its outcome goes out now (the worker that takes it later sees it was sent)
        if (result.previous === "queued") {
          const record = await store.get(request.meta.tenant, request.runId);
          new EventPublisher(bus, request.runId, 1).emit({
            type: "run-finished",
            status: "cancelled",
            usage: record?.usage ?? emptyUsage(),
            costUsd: record?.costUsd ?? 0,
            steps: record?.steps ?? 0,
            error: { code: "cancelled", message: "cancelled by request", retryable: false },
            ...(record?.threadId ? { threadId: record.threadId } : {}),
          });
        }
      }
      return { runId: request.runId, status: result.status, cancelled: result.cancelled };
    },
    options,
  );
}
