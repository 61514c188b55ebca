import { Streams, Subjects } from "@agent-runtime/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { decodeWith } from "./codec.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

const Item = z.object({ n: z.number() });

let bus: Bus;
beforeEach(async () => {
  bus = await createTestBus();
  await bus.ensureStreams([Streams.runs, Streams.runEvents]);
});
afterEach(async () => {
  await cleanupTestBus(bus);
});

describe("stream reads", () => {
  it("reads a work-queue stream under a subject message by message, without a consumer", async () => {
    const first = await bus.publishDurable(Subjects.runs("batch", "acme"), Item, { n: 1 });
    await bus.publishDurable(Subjects.runs("batch", "globex"), Item, { n: 2 });
    const third = await bus.publishDurable(Subjects.runs("interactive", "acme"), Item, { n: 3 });
    const read = async (seq: number) => {
      const message = await bus.nextStreamMessage(Streams.runs, "runs.*.acme", seq);
      return message && { seq: message.seq, item: decodeWith(Item, message.data) };
    };
    expect(await read(1)).toEqual({ seq: first.seq, item: { n: 1 } });
    expect(await read(first.seq + 1)).toEqual({ seq: third.seq, item: { n: 3 } });
    expect(await read(third.seq + 1)).toBeNull();
  });

  it("a stream that is not there has nothing to read; a sequence below 0 is refused", async () => {
    expect(await bus.nextStreamMessage(Streams.events, "events.>", 1)).toBeNull();
    await expect(bus.nextStreamMessage(Streams.runs, "runs.>", -1)).rejects.toThrow(RangeError);
    await expect(bus.nextStreamMessage(Streams.runs, "runs.>", 1.5)).rejects.toThrow("whole number");
  });

  it("finds the last message of a subject, null when none is stored", async () => {
    await bus.publishDurable(Subjects.runEvents("r1"), Item, { n: 1 });
    const last = await bus.publishDurable(Subjects.runEvents("r1"), Item, { n: 2 });
    await bus.publishDurable(Subjects.runEvents("r2"), Item, { n: 3 });
    const found = await bus.lastStreamMessage(Streams.runEvents, Subjects.runEvents("r1"));
    expect(found?.seq).toBe(last.seq);
    expect(decodeWith(Item, found!.data)).toEqual({ n: 2 });
    expect(await bus.lastStreamMessage(Streams.runEvents, Subjects.runEvents("r3"))).toBeNull();
  });

  it("replays a subject's messages in order, from the first or after a sequence", async () => {
    const seqs: number[] = [];
    for (const n of [1, 2, 3]) {
      seqs.push((await bus.publishDurable(Subjects.runEvents("r1"), Item, { n })).seq);
      await bus.publishDurable(Subjects.runEvents("r2"), Item, { n: 10 + n });
    }
    const replay = async (after?: number) => {
      const consumer = await bus.readStream(Streams.runEvents, Subjects.runEvents("r1"), after);
      const batch = await consumer.fetch({ max_messages: 10, expires: 1000 });
      const items: Array<[number, number]> = [];
      for await (const message of batch) items.push([message.seq, decodeWith(Item, message.data).n]);
      await consumer.delete().catch(() => undefined);
      return items;
    };
    expect(await replay()).toEqual([
      [seqs[0], 1],
      [seqs[1], 2],
      [seqs[2], 3],
    ]);
    expect(await replay(seqs[0])).toEqual([
      [seqs[1], 2],
      [seqs[2], 3],
    ]);
  });
});
