import { Streams, Subjects } from "@agent-runtime/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { decodeWith } from "./codec.js";
import { isJetStreamError, JetStreamErrorCode } from "./jetstream-errors.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

const Item = z.object({ n: z.number() });

let bus: Bus;
beforeEach(async () => {
  bus = await createTestBus();
  await bus.ensureStreams([Streams.runEvents, Streams.threadTurns]);
});
afterEach(async () => {
  await cleanupTestBus(bus);
});

const publish = async (subject: string, n: number) => (await bus.publishDurable(subject, Item, { n })).seq;

describe("stream admin", () => {
  it("counts a subject's messages (wildcards included) with the stream's first sequence", async () => {
    const first = await publish(Subjects.runEvents("r1"), 1);
    await publish(Subjects.runEvents("r1"), 2);
    await publish(Subjects.runEvents("r2"), 3);
    expect(await bus.streamSubjectCount(Streams.runEvents, Subjects.runEvents("r1"))).toEqual({
      messages: 2,
      firstSeq: first,
    });
    expect(await bus.streamSubjectCount(Streams.runEvents, Subjects.runEventsAll)).toEqual({
      messages: 3,
      firstSeq: first,
    });
    expect(await bus.streamSubjectCount(Streams.runEvents, Subjects.runEvents("r3"))).toEqual({
      messages: 0,
      firstSeq: first,
    });
  });

  it("a stream that is not there has no count", async () => {
    expect(await bus.streamSubjectCount(Streams.events, Subjects.eventsAll)).toBeNull();
  });

  it("reads a durable consumer's backlog: not yet delivered, and delivered but not acknowledged", async () => {
    const durable = "admin-backlog";
    await bus.ensureConsumer(Streams.runEvents, {
      durable_name: durable,
      filter_subject: Subjects.runEventsAll,
    });
    for (const n of [1, 2, 3]) await publish(Subjects.runEvents("r1"), n);
    expect(await bus.consumerBacklog(Streams.runEvents, durable)).toEqual({ pending: 3, ackPending: 0 });

    const consumer = await bus.js.consumers.get(bus.streamName(Streams.runEvents), durable);
    const delivered = await consumer.next({ expires: 2000 });
    expect(delivered).not.toBeNull();
    expect(await bus.consumerBacklog(Streams.runEvents, durable)).toEqual({ pending: 2, ackPending: 1 });

    await delivered!.ackAck();
    expect(await bus.consumerBacklog(Streams.runEvents, durable)).toEqual({ pending: 2, ackPending: 0 });
  });

  it("a consumer, or a stream, that is not there has no backlog", async () => {
    expect(await bus.consumerBacklog(Streams.runEvents, "not-there")).toBeNull();
    expect(await bus.consumerBacklog(Streams.events, "not-there")).toBeNull();
  });

  it("purges one subject, leaving the others", async () => {
    await publish(Subjects.runEvents("r1"), 1);
    await publish(Subjects.runEvents("r1"), 2);
    const kept = await publish(Subjects.runEvents("r2"), 3);
    expect(await bus.purgeStreamSubject(Streams.runEvents, Subjects.runEvents("r1"))).toBe(2);
    expect(await bus.purgeStreamSubject(Streams.runEvents, Subjects.runEvents("r1"))).toBe(0);
    expect(await bus.streamSubjectCount(Streams.runEvents, Subjects.runEventsAll)).toEqual({
      messages: 1,
      firstSeq: kept,
    });
  });

  it("a purge of a stream that is not there throws the server's stream-not-found error", async () => {
    const error = await bus
      .purgeStreamSubject(Streams.events, Subjects.eventsAll)
      .catch((cause: unknown) => cause);
    expect(isJetStreamError(error, JetStreamErrorCode.streamNotFound)).toBe(true);
  });

  it("deletes one message; a message or stream that is not there has nothing to delete", async () => {
    const first = await publish(Subjects.runEvents("r1"), 1);
    const second = await publish(Subjects.runEvents("r1"), 2);
    expect(await bus.deleteStreamMessage(Streams.runEvents, first)).toBe(true);
    const left = await bus.nextStreamMessage(Streams.runEvents, Subjects.runEvents("r1"), 0);
    expect(left?.seq).toBe(second);

    // the server's answer to a second delete is the code the bus reads as "not there"
    const jsm = await bus.jsm();
    const refused = await jsm.streams
      .deleteMessage(bus.streamName(Streams.runEvents), first, true)
      .catch((cause: unknown) => cause);
    expect(isJetStreamError(refused, JetStreamErrorCode.messageDeleteFailed)).toBe(true);

    expect(await bus.deleteStreamMessage(Streams.runEvents, first)).toBe(false);
    expect(await bus.deleteStreamMessage(Streams.runEvents, second + 100)).toBe(false);
    expect(await bus.deleteStreamMessage(Streams.events, 1)).toBe(false);
    await expect(bus.deleteStreamMessage(Streams.runEvents, 0)).rejects.toThrow(RangeError);
  });

  it("reads a subject message by message with direct get, null once none is left", async () => {
    const subject = Subjects.threadTurns("acme", "thread-1");
    const first = await publish(subject, 1);
    await publish(Subjects.threadTurns("acme", "thread-2"), 2);
    const third = await publish(subject, 3);
    const read = async (seq: number) => {
      const message = await bus.nextStreamMessageDirect(Streams.threadTurns, subject, seq);
      return message && { seq: message.seq, item: decodeWith(Item, message.data) };
    };
    expect(await read(1)).toEqual({ seq: first, item: { n: 1 } });
    expect(await read(first + 1)).toEqual({ seq: third, item: { n: 3 } });
    expect(await read(third + 1)).toBeNull();
    await expect(bus.nextStreamMessageDirect(Streams.threadTurns, subject, -1)).rejects.toThrow(RangeError);
  });
});
