import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { DeadLetter, RuntimeError, Subjects } from "@agent-runtime/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { decodeWith } from "./codec.js";
import { consume, nakDelay } from "./consumer.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

const Job = z.object({ n: z.number() });

let bus: Bus;
beforeEach(async () => {
  bus = await createTestBus();
  await bus.ensureStreams(["MEMORY_JOBS", "DEAD_LETTERS"]);
});
afterEach(async () => {
  await cleanupTestBus(bus);
});

async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("condition not met in time");
}

async function deadLetters(target: Bus): Promise<DeadLetter[]> {
  const jsm = await target.jsm();
  const info = await jsm.streams.info(target.streamName("DEAD_LETTERS"));
  const letters: DeadLetter[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const stored = await jsm.streams.getMessage(target.streamName("DEAD_LETTERS"), { seq }).catch(() => null);
    if (stored) letters.push(decodeWith(DeadLetter, stored.data));
  }
  return letters;
}

describe("JetStream", () => {
  it("creates streams idempotently and dedupes by Nats-Msg-Id", async () => {
    await bus.ensureStreams(["MEMORY_JOBS"]);
    const first = await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 }, { msgId: "job-1" });
    const second = await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 }, { msgId: "job-1" });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
  });

  it("refuses a durable publish at once when no stream stores the subject, or the stream refuses it", async () => {
    // answered by the server (no responders), not by the publish timeout
    await expect(bus.publishDurable("nowhere.stored", Job, { n: 1 })).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringContaining("no stream stores this subject"),
    });
    const jsm = await bus.jsm();
    await jsm.streams.update(bus.streamName("MEMORY_JOBS"), { max_msg_size: 8 });
    await expect(
      bus.publishDurable(Subjects.memoryJobs, Job, { n: 123456789 }, { msgId: "too-big" }),
    ).rejects.toMatchObject({
      code: "validation",
      retryable: false,
      message: expect.stringContaining("message size exceeds"),
    });
  });

  it("processes and acks valid messages", async () => {
    const seen: number[] = [];
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "ok-workers",
      schema: Job,
      concurrency: 4,
      deadLetterOrigin: "test",
      handler: async (job) => {
        seen.push(job.n);
      },
    });
    for (let n = 0; n < 10; n++) await bus.publishDurable(Subjects.memoryJobs, Job, { n });
    await waitFor(() => (seen.length === 10 ? true : undefined));
    expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const jsm = await bus.jsm();
    await waitFor(async () => {
      const info = await jsm.streams.info(bus.streamName("MEMORY_JOBS"));
      return info.state.messages === 0 ? true : undefined;
    });
  });

  it("dead-letters an invalid message instead of crashing", async () => {
    const seen: number[] = [];
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "strict-workers",
      schema: Job,
      concurrency: 2,
      deadLetterOrigin: "jobs",
      handler: async (job) => {
        seen.push(job.n);
      },
    });
    await bus.js.publish(bus.subject(Subjects.memoryJobs), new TextEncoder().encode('{"n":"not a number"}'));
    await bus.js.publish(bus.subject(Subjects.memoryJobs), new TextEncoder().encode("not json"));
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 7 });
    await waitFor(() => (seen.includes(7) ? true : undefined));
    const letters = await waitFor(async () => {
      const found = await deadLetters(bus);
      return found.length >= 2 ? found : undefined;
    });
    expect(letters.map((letter) => letter.origin)).toEqual(["jobs", "jobs"]);
    expect(letters[0]?.reason).toMatch(/n:/);
    expect(letters[1]?.reason).toMatch(/not JSON/);
    expect(letters[0]?.payload).toContain("not a number");
  });

  it("naks with growing delay and dead-letters after max deliveries", async () => {
    const attempts: number[] = [];
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "flaky-workers",
      schema: Job,
      concurrency: 1,
      maxDeliver: 3,
      backoff: { initialMs: 100, maxMs: 1000 },
      deadLetterOrigin: "flaky",
      handler: async (_job, ctx) => {
        attempts.push(Date.now());
        throw new Error(`attempt ${ctx.deliveryCount} failed`);
      },
    });
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 });
    const letters = await waitFor(async () => {
      const found = await deadLetters(bus);
      return found.length > 0 ? found : undefined;
    });
    expect(attempts).toHaveLength(3);
    expect(letters[0]?.deliveries).toBe(3);
    expect(letters[0]?.reason).toMatch(/gave up after 3 deliveries/);
    // second gap (200 ms) is longer than the first (100 ms)
    const gaps = [attempts[1]! - attempts[0]!, attempts[2]! - attempts[1]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(nakDelay(1, { initialMs: 100, maxMs: 1000 })).toBe(100);
    expect(nakDelay(5, { initialMs: 100, maxMs: 1000 })).toBe(1000);
  });

  it("dead-letters at once on a non-retryable error", async () => {
    let attempts = 0;
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "permanent",
      schema: Job,
      concurrency: 1,
      deadLetterOrigin: "permanent",
      handler: async () => {
        attempts++;
        throw new RuntimeError("validation", "job refers to nothing");
      },
    });
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 });
    const letters = await waitFor(async () => {
      const found = await deadLetters(bus);
      return found.length > 0 ? found : undefined;
    });
    expect(attempts).toBe(1);
    expect(letters[0]?.reason).toBe("job refers to nothing");
  });

  it("dead-letters each bad message exactly once and removes it from its stream", async () => {
    const calls: { data: unknown; reason: string; deliveryCount: number; payload: string }[] = [];
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "once",
      schema: Job,
      concurrency: 2,
      // a message left unacked would come back within a few of these
      ackWaitMs: 300,
      maxDeliver: 2,
      backoff: { initialMs: 50, maxMs: 100 },
      deadLetterOrigin: "once",
      handler: async (job) => {
        if (job.n === 1) throw new RuntimeError("validation", "job 1 refers to nothing");
        throw new Error(`job ${job.n} keeps failing`);
      },
      onDeadLetter: async (data, reason, context) => {
        calls.push({ data, reason, deliveryCount: context.deliveryCount, payload: context.payload });
        if (data === undefined) throw new Error("a failing hook does not stop dead-lettering");
      },
    });
    await bus.js.publish(bus.subject(Subjects.memoryJobs), new TextEncoder().encode("not json"));
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 });
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 2 });
    await waitFor(async () => ((await deadLetters(bus)).length >= 3 ? true : undefined));
    // several ack-wait periods: a message that was not settled would be redelivered and dead-lettered again
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const letters = await deadLetters(bus);
    expect(letters.map((letter) => letter.payload).sort()).toEqual(["not json", '{"n":1}', '{"n":2}']);
    const jsm = await bus.jsm();
    expect((await jsm.streams.info(bus.streamName("MEMORY_JOBS"))).state.messages).toBe(0);

    expect(calls).toHaveLength(3);
    const byPayload = new Map(calls.map((call) => [call.payload, call]));
    expect(byPayload.get("not json")).toMatchObject({
      data: undefined,
      reason: expect.stringMatching(/not JSON/),
    });
    expect(byPayload.get('{"n":1}')).toMatchObject({
      data: { n: 1 },
      reason: "job 1 refers to nothing",
      deliveryCount: 1,
    });
    expect(byPayload.get('{"n":2}')).toMatchObject({
      data: { n: 2 },
      reason: expect.stringMatching(/gave up after 2 deliveries: job 2 keeps failing/),
      deliveryCount: 2,
    });
  });

  it("redelivers to another worker after a worker dies without ack", async () => {
    const worker = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        fileURLToPath(new URL("./fixtures/dying-worker.ts", import.meta.url)),
        bus.prefix,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    worker.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      await waitFor(() => (output.includes("ready") ? true : undefined), 20_000);
      await bus.publishDurable(Subjects.memoryJobs, Job, { n: 42 });
      await waitFor(() => (output.includes("got 42") ? true : undefined));
    } finally {
      worker.kill("SIGKILL");
    }
    const redelivered = new Promise<{ n: number; deliveryCount: number }>((resolve) => {
      void consume(bus, {
        stream: "MEMORY_JOBS",
        durable: "workers",
        schema: Job,
        concurrency: 1,
        ackWaitMs: 1500,
        deadLetterOrigin: "test",
        handler: async (job, ctx) => resolve({ n: job.n, deliveryCount: ctx.deliveryCount }),
      });
    });
    await expect(redelivered).resolves.toEqual({ n: 42, deliveryCount: 2 });
  });

  it("drain finishes in-flight work before closing", async () => {
    let finished = false;
    let started = false;
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "drainers",
      schema: Job,
      concurrency: 1,
      deadLetterOrigin: "test",
      handler: async () => {
        started = true;
        await new Promise((resolve) => setTimeout(resolve, 300));
        finished = true;
      },
    });
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 });
    await waitFor(() => (started ? true : undefined));
    const observer = await createTestBus({ prefix: bus.prefix });
    await bus.drain();
    expect(finished).toBe(true);
    const jsm = await observer.jsm();
    const info = await jsm.streams.info(observer.streamName("MEMORY_JOBS"));
    expect(info.state.messages).toBe(0);
    await cleanupTestBus(observer);
  });
  it("acknowledges after ackAfter settles, frees the slot at once, and delivers again when it fails", async () => {
    const deliveries: Array<{ n: number; count: number }> = [];
    const gates = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "late-ackers",
      schema: Job,
      concurrency: 1,
      backoff: { initialMs: 50, maxMs: 50 },
      deadLetterOrigin: "test",
      handler: async (job, context) => {
        deliveries.push({ n: job.n, count: context.deliveryCount });
        if (context.deliveryCount > 1) return;
        context.ackAfter(new Promise<void>((resolve, reject) => gates.set(job.n, { resolve, reject })));
      },
    });
    const jsm = await bus.jsm();
    const stored = async () => (await jsm.streams.info(bus.streamName("MEMORY_JOBS"))).state.messages;
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 });
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 2 });
    // one slot, yet both were handled: the first handler's slot was free before its ack
    await waitFor(() => (gates.size === 2 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await stored()).toBe(2);
    gates.get(1)!.resolve();
    await waitFor(async () => ((await stored()) === 1 ? true : undefined));
    gates.get(2)!.reject(new Error("not flushed"));
    await waitFor(() =>
      deliveries.some((delivery) => delivery.n === 2 && delivery.count === 2) ? true : undefined,
    );
    await waitFor(async () => ((await stored()) === 0 ? true : undefined));
    expect(deliveries).toEqual([
      { n: 1, count: 1 },
      { n: 2, count: 1 },
      { n: 2, count: 2 },
    ]);
  });

  it("drain waits for acknowledgements still waiting on ackAfter", async () => {
    let handled = false;
    await consume(bus, {
      stream: "MEMORY_JOBS",
      durable: "late-drainers",
      schema: Job,
      concurrency: 1,
      deadLetterOrigin: "test",
      handler: async (_job, context) => {
        handled = true;
        context.ackAfter(new Promise((resolve) => setTimeout(resolve, 400)));
      },
    });
    await bus.publishDurable(Subjects.memoryJobs, Job, { n: 1 });
    await waitFor(() => (handled ? true : undefined));
    const observer = await createTestBus({ prefix: bus.prefix });
    await bus.drain();
    const jsm = await observer.jsm();
    const info = await jsm.streams.info(observer.streamName("MEMORY_JOBS"));
    expect(info.state.messages).toBe(0);
    await cleanupTestBus(observer);
  });
});
