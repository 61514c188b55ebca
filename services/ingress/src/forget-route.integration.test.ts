/**
 * The forget routes' order and bookkeeping, against stand-ins for the orchestrator and memory on
 * the real bus: runs before memory, rounds until no run is left, the threads one side knows and
 * the other does not, totals, and a failure answered as a retryable 503 before memory is touched.
 */
import type { ServedEndpoint } from "@agent-runtime/bus";
import {
  Endpoints,
  type MemoryForgetReply,
  type MemoryForgetRequest,
  QueueGroups,
  type RunForgetReply,
  type RunForgetRequest,
  RuntimeError,
} from "@agent-runtime/contracts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;
let served: ServedEndpoint[] = [];
const calls: string[] = [];

const http = (path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${BOOTSTRAP_KEY}`);
  return fetch(`${harness.url}${path}`, { ...init, headers });
};

/** Serves run.forget and memory.forget with the answers given, recording each request in `calls`. */
async function standIns(
  runs: (request: RunForgetRequest) => RunForgetReply,
  memory: (request: MemoryForgetRequest) => Omit<MemoryForgetReply, "threadIds"> & { threadIds?: string[] },
) {
  served = [
    harness.bus.serve(
      Endpoints.runForget,
      async (request) => {
        calls.push(`runs ${request.userId ?? ""} [${request.threadIds.join(",")}]`);
        return runs(request);
      },
      { queue: QueueGroups.orchestrator, maxInFlight: 4 },
    ),
    harness.bus.serve(
      Endpoints.memoryForget,
      async (request) => {
        calls.push(`memory ${request.userId ?? ""} ${request.threadId ?? ""}`.trim());
        return { threadIds: [], ...memory(request) };
      },
      { queue: QueueGroups.memory, maxInFlight: 4 },
    ),
  ];
  await harness.bus.nc.flush();
}

const deleted = (threads: number, messages = 0) => ({ threads, messages, documents: 0, chunks: 0 });
const noRuns: RunForgetReply = { runs: 0, steps: 0, cancelled: 0, threadIds: [], more: false };

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterEach(async () => {
  for (const endpoint of served) await endpoint.stop();
  served = [];
  calls.length = 0;
});

afterAll(async () => {
  await harness?.stop();
});

describe("forget routes", () => {
  it("forgets a user's runs round after round, then memory, then runs of the user's threads made without the user", async () => {
    let round = 0;
    await standIns(
      (request) => {
        if (request.userId) {
          round++;
          return round === 1
            ? { runs: 200, steps: 400, cancelled: 1, threadIds: ["t1"], more: true }
            : { runs: 3, steps: 5, cancelled: 0, threadIds: ["t1", "t2"], more: false };
        }
        // the user's thread whose runs were made without the user
        return { runs: 2, steps: 2, cancelled: 0, threadIds: ["t3"], more: false };
      },
      (request) =>
        request.userId
          ? { deleted: { ...deleted(2, 9), documents: 1, chunks: 4 }, threadIds: ["t1", "t3"] }
          : { deleted: deleted(1, 2) },
    );
    const response = await http("/v1/users/ann%40example.com", { method: "DELETE" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      id: "ann@example.com",
      object: "user",
      deleted: true,
      runs: 205,
      steps: 407,
      cancelled: 1,
      threads: 2,
      messages: 9,
      documents: 1,
      chunks: 4,
    });
    expect(calls).toEqual([
      "runs ann@example.com []",
      "runs ann@example.com []",
      "memory ann@example.com",
      // a thread memory listed whose runs were not the user's
      "runs  [t3]",
    ]);
  });

  it("forgets a thread's runs before its messages; 404 when neither is there", async () => {
    await standIns(
      (request) =>
        request.threadIds[0] === "known" ? { ...noRuns, runs: 2, steps: 3, threadIds: ["known"] } : noRuns,
      (request) => ({ deleted: deleted(request.threadId === "known" ? 1 : 0, 4) }),
    );
    const forgotten = await http("/v1/threads/known", { method: "DELETE" });
    expect(await forgotten.json()).toMatchObject({
      id: "known",
      object: "thread",
      deleted: true,
      runs: 2,
      threads: 1,
    });
    expect(calls).toEqual(["runs  [known]", "memory  known"]);
    expect((await http("/v1/threads/unknown", { method: "DELETE" })).status).toBe(404);
  });

  it("answers a store that cannot forget now with a retryable 503, before memory is asked", async () => {
    await standIns(
      () => {
        throw new RuntimeError("unavailable", "the model caches are away", { retryAfterMs: 1000 });
      },
      () => ({ deleted: deleted(1) }),
    );
    const response = await http("/v1/users/bob", { method: "DELETE" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBeTruthy();
    expect(await response.json()).toMatchObject({ error: { type: expect.any(String) } });
    expect(calls).toEqual(["runs bob []"]);
  });

  it("refuses a user id the stores cannot hold, naming it", async () => {
    const response = await http(`/v1/users/${encodeURIComponent("bob\u0000")}`, { method: "DELETE" });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).toContain('"id"');
  });
});
