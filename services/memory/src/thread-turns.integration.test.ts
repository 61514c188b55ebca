import type { Bus } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus } from "@agent-runtime/bus/testing";
import { MemoryAppendRequest, Streams, Subjects } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ThreadTurns } from "./thread-turns.js";

// Real NATS (JetStream); the store is a recorder, so what reached it and in which order is visible.
let bus: Bus;
let stored: MemoryAppendRequest[];
let turns: ThreadTurns;
const logger = createLogger({ service: "memory-test", level: "silent" });

beforeEach(async () => {
  bus = await createTestBus();
  await bus.ensureStreams(["THREAD_TURNS"]);
  stored = [];
  turns = new ThreadTurns(bus, logger, async (turn) => {
    stored.push(turn);
  });
});
afterEach(async () => {
  await turns.stop();
  await cleanupTestBus(bus);
});

const turn = (tenant: string, threadId: string, runId: string): MemoryAppendRequest => ({
  meta: { v: 1, tenant, requestId: `${runId}:append`, runId, deadline: Date.now() + 10_000 },
  threadId,
  agent: "assistant",
  messages: [
    { id: `${runId}:0`, message: { role: "user", content: `question of ${runId}` } },
    { id: `${runId}:1`, message: { role: "assistant", content: `answer of ${runId}` } },
  ],
});

async function journal(entry: MemoryAppendRequest): Promise<void> {
  await bus.publishDurable(
    Subjects.threadTurns(entry.meta.tenant, entry.threadId),
    MemoryAppendRequest,
    entry,
    {
      msgId: `turn:${entry.meta.runId}`,
    },
  );
}

async function waiting(): Promise<number> {
  const jsm = await bus.jsm();
  return (await jsm.streams.info(bus.streamName(Streams.threadTurns))).state.messages;
}

describe("journaled turns", () => {
  it("a read of a thread stores its waiting turns first, oldest first, and no other thread's", async () => {
    // thread ids may hold '.', which a subject token cannot
    await journal(turn("acme", "thread.a", "run_1"));
    await journal(turn("acme", "thread.b", "run_2"));
    await journal(turn("other", "thread.a", "run_3"));
    await journal(turn("acme", "thread.a", "run_4"));
    await journal(turn("acme", "thread.a", "run_4")); // a journal write repeated after a crash

    await turns.catchUp("acme", "thread.a");
    expect(stored.map((entry) => entry.meta.runId)).toEqual(["run_1", "run_4"]);
    // nothing consumed them yet: the background consumer still stores (and removes) every turn
    expect(await waiting()).toBe(4);

    stored = [];
    await turns.start(4);
    for (let i = 0; i < 200 && (await waiting()) > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await waiting()).toBe(0);
    // (a turn may be stored twice when two of its thread's turns are delivered at once: stores are idempotent)
    expect([...new Set(stored.map((entry) => entry.meta.runId))].sort()).toEqual([
      "run_1",
      "run_2",
      "run_3",
      "run_4",
    ]);

    // all stored: a read finds nothing waiting
    stored = [];
    await turns.catchUp("acme", "thread.a");
    expect(stored).toEqual([]);
  });

  it("concurrent reads of one thread store its turns once per read chain, in order", async () => {
    for (let n = 0; n < 5; n++) await journal(turn("acme", "t", `run_${n}`));
    await Promise.all([turns.catchUp("acme", "t"), turns.catchUp("acme", "t"), turns.catchUp("acme", "t")]);
    // chained, not interleaved: each pass stores the five turns in journal order
    const order = stored.map((entry) => entry.meta.runId);
    expect(order.length % 5).toBe(0);
    for (let pass = 0; pass < order.length / 5; pass++)
      expect(order.slice(pass * 5, pass * 5 + 5)).toEqual(["run_0", "run_1", "run_2", "run_3", "run_4"]);
  });

  it("a forgotten thread's waiting turns are dropped, so nothing brings it back", async () => {
    await journal(turn("acme", "gone", "run_9"));
    await journal(turn("acme", "kept", "run_10"));
    await turns.discard("acme", ["gone"]);
    await turns.catchUp("acme", "gone");
    expect(stored).toEqual([]);
    expect(await waiting()).toBe(1);
  });

  it("a turn the store refuses is retried by the consumer, then stored", async () => {
    let refusals = 0;
    const flaky = new ThreadTurns(bus, logger, async (entry) => {
      if (refusals++ < 2) throw new Error("database restarting");
      stored.push(entry);
    });
    await journal(turn("acme", "flaky", "run_11"));
    await flaky.start(1);
    try {
      for (let i = 0; i < 400 && stored.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(stored.map((entry) => entry.meta.runId)).toEqual(["run_11"]);
      expect(refusals).toBe(3);
    } finally {
      await flaky.stop();
    }
  });
});
