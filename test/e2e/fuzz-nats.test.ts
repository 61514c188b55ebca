/**
 * NATS fuzz suite: garbage and schema-violating messages on every subject the services
 * consume. Must hold: every request is answered once with a typed error (never silence),
 * every bad JetStream message is dead-lettered exactly once with a reason (and acked, so
 * nothing is redelivered), no service crashes, and the stack serves afterwards.
 */
import type { Bus } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus } from "@agent-runtime/bus/testing";
import {
  DeadLetter,
  Endpoints,
  ErrorEnvelope,
  MESSAGE_VERSION,
  Streams,
  Subjects,
  WireError,
} from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { maybe, NASTY_STRINGS, nastyJson, nastyString } from "../support/fuzz.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-fuzz-nats-key";
const SEED = Number(process.env.FUZZ_SEED ?? 20_241_203);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let fake: FakeOpenAI;
let stack: Stack;
let bus: Bus;
let tools: string[] = [];

const meta = () => ({
  v: MESSAGE_VERSION,
  tenant: "default",
  requestId: `fuzz-${Math.random().toString(36).slice(2)}`,
  deadline: Date.now() + 20_000,
});

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "ok" }));
  stack = await startStack({ bootstrapApiKey: KEY, openaiBaseUrl: fake.url });
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix, name: "fuzz-nats" });
  tools = (await bus.request(Endpoints.toolList, { tenant: "default" })).tools.map((tool) => tool.name);
});

afterAll(async () => {
  // the stack's streams are deleted with its namespace
  await stack?.stop();
  if (bus) await cleanupTestBus(bus).catch(() => undefined);
  await fake?.close();
});

/** Every request/reply subject a service serves: the catalog, and one per tool. */
function servedSubjects(): string[] {
  return [
    ...Object.values(Endpoints).map((endpoint) => endpoint.subject),
    ...tools.map((name) => Subjects.toolExec(name)),
  ];
}

const AnyEnvelope = z.union([z.object({ ok: z.literal(true), data: z.unknown() }), ErrorEnvelope]);

/** One raw request (no keep-alives asked): the reply must come, and be an envelope. */
async function ask(subject: string, payload: Uint8Array): Promise<z.infer<typeof AnyEnvelope>> {
  // no x-deadline header: the service applies its default deadline
  const reply = await bus.nc.request(bus.subject(subject), payload, { timeout: 25_000 });
  const text = decoder.decode(reply.data);
  const parsed = AnyEnvelope.safeParse(JSON.parse(text));
  expect(parsed.success, `${subject}: ${text.slice(0, 300)}`).toBe(true);
  return parsed.data!;
}

/** Payloads no request schema takes: not JSON, not an object, nested past any limit. */
const NOT_REQUESTS: Uint8Array[] = [
  new Uint8Array(),
  encoder.encode("not json"),
  encoder.encode("{"),
  encoder.encode("null"),
  encoder.encode("[]"),
  encoder.encode("42"),
  encoder.encode('"meta"'),
  new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x22]),
];
/** Objects that are wrong in most schemas (some endpoints take almost anything). */
const ODD_REQUESTS: Uint8Array[] = [
  encoder.encode('{"meta":null}'),
  encoder.encode('{"meta":{"tenant":"../x","requestId":"","deadline":-1}}'),
  encoder.encode('{"meta":{"v":1,"tenant":"a.b.>","requestId":"r","deadline":1e30}}'),
  encoder.encode(`{"meta":${"[".repeat(3000)}${"]".repeat(3000)}}`),
  encoder.encode('{"__proto__":{"polluted":true},"meta":{}}'),
  encoder.encode(JSON.stringify({ meta: { v: 1, tenant: "\u0000", requestId: "\ud800", deadline: 1 } })),
];
const GARBAGE = [...NOT_REQUESTS, ...ODD_REQUESTS];

describe("request/reply", () => {
  it("answers garbage on every served subject with a typed error (validation for what no schema takes)", async () => {
    const subjects = servedSubjects();
    expect(subjects.length).toBeGreaterThan(10);
    for (const subject of subjects) {
      for (const payload of GARBAGE) {
        const label = `${subject} ${decoder.decode(payload).slice(0, 60)}`;
        const envelope = await ask(subject, payload);
        if (NOT_REQUESTS.includes(payload)) expect(envelope.ok, label).toBe(false);
        if (!envelope.ok) {
          expect(WireError.safeParse(envelope.error).success).toBe(true);
          if (NOT_REQUESTS.includes(payload))
            expect(envelope.error.code, `${label}: ${envelope.error.message}`).toBe("validation");
          expect(envelope.error.message).not.toMatch(/\bat .+\.(ts|js):\d+/);
        }
      }
    }
  }, 60_000);

  it("answers generated schema-violating requests once, with a typed error or an answer", async () => {
    const subjects = servedSubjects();
    const request = fc.record(
      {
        meta: maybe(fc.constant(null).map(() => meta())),
        tenant: nastyString,
        runId: maybe(nastyString),
        threadId: maybe(nastyString),
        name: maybe(fc.constantFrom(...tools, "ghost")),
        arguments: nastyJson,
        messages: maybe(fc.array(fc.record({ role: nastyString, content: nastyString }), { maxLength: 2 })),
        input: maybe(fc.array(nastyString, { maxLength: 2 })),
        query: maybe(nastyString),
        text: maybe(nastyString),
        calls: maybe(fc.array(fc.record({ callId: nastyString, name: nastyString, arguments: nastyJson }))),
      },
      { requiredKeys: [] },
    );
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...subjects), request, async (subject, body) => {
        const envelope = await ask(subject, encoder.encode(JSON.stringify(body)));
        answered++;
        if (!envelope.ok) expect(WireError.safeParse(envelope.error).success, subject).toBe(true);
      }),
      { seed: SEED, numRuns: 150, endOnFailure: true },
    );
    expect(answered).toBe(150);
  }, 90_000);

  it("drops garbage on the core subjects services listen to, without a crash", async () => {
    for (const subject of [Subjects.toolRegister, Subjects.runCancelled("run_fuzz"), "ingress.fuzz.events"]) {
      for (const payload of GARBAGE) bus.nc.publish(bus.subject(subject), payload);
    }
    await bus.nc.flush();
    // still serving: a valid request on the same connection round-trips through every service
    expect((await bus.request(Endpoints.toolList, { tenant: "default" })).tools.length).toBeGreaterThan(0);
  });
});

interface BadMessage {
  subject: string;
  payload: string;
}

/** Every message in the namespace's DEAD_LETTERS stream. */
async function deadLetters(): Promise<DeadLetter[]> {
  const jsm = await bus.jsm();
  const stream = bus.streamName(Streams.deadLetters);
  const info = await jsm.streams.info(stream);
  const letters: DeadLetter[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (message) letters.push(DeadLetter.parse(JSON.parse(decoder.decode(message.data))));
  }
  return letters;
}

/** The durable consumers that read the runtime's JetStream subjects. */
const CONSUMERS: [string, string][] = [
  [Streams.runs, "orchestrator-interactive"],
  [Streams.runs, "orchestrator-batch"],
  [Streams.events, "orchestrator-events"],
  [Streams.memoryJobs, "memory-jobs"],
  [Streams.threadTurns, "memory-turns"],
  [Streams.usage, "ingress-usage"],
];

describe("JetStream", () => {
  it("dead-letters each bad message once, with a reason, and acks it", async () => {
    const subjects = [
      Subjects.runs("interactive", "default"),
      Subjects.runs("batch", "default"),
      Subjects.events("fuzz", "garbage"),
      Subjects.memoryJobs,
      Subjects.threadTurns("default", "thread_fuzz"),
      Subjects.usageModel,
      Subjects.usageTool,
    ];
    const bad: BadMessage[] = [];
    for (const [index, subject] of subjects.entries()) {
      const marker = `fuzz-${index}`;
      const payloads = [
        `not json ${marker}`,
        `{"${marker}":`,
        JSON.stringify({ marker, v: 1 }),
        JSON.stringify({ v: 1, runId: 42, tenant: "../x", marker, input: "\u0000" }),
        JSON.stringify([marker, ...NASTY_STRINGS.slice(0, 8)]),
      ];
      for (const payload of payloads) {
        await bus.js.publish(bus.subject(subject), encoder.encode(payload));
        bad.push({ subject, payload });
      }
    }
    // events also come from other systems straight onto NATS: what the stores cannot hold is refused there
    for (const [index, data] of [{ note: "a\u0000b" }, { "k\ud800": 1 }, ["\udfff"]].entries()) {
      const payload = JSON.stringify({
        specversion: "1.0",
        id: `unstorable-${index}`,
        source: "fuzz",
        type: "t",
        data,
      });
      await bus.js.publish(bus.subject(Subjects.events("fuzz", "unstorable")), encoder.encode(payload));
      bad.push({ subject: Subjects.events("fuzz", "unstorable"), payload });
    }

    const key = (message: BadMessage) => `${message.subject}\n${message.payload}`;
    const wanted = new Set(bad.map(key));
    let letters: DeadLetter[] = [];
    // each consumer gets to every message; nothing here depends on how long that takes
    for (let attempt = 0; attempt < 300; attempt++) {
      letters = (await deadLetters()).filter((letter) => wanted.has(key(letter)));
      if (new Set(letters.map(key)).size === wanted.size) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const missing = bad.filter((message) => !letters.some((letter) => key(letter) === key(message)));
    expect(missing, JSON.stringify(missing).slice(0, 500)).toEqual([]);
    for (const letter of letters) {
      expect(letter.reason, letter.payload).toMatch(/^invalid message: /);
      expect(letter.deliveries).toBeGreaterThanOrEqual(1);
    }
    // once: one dead letter per message, and every consumer has acked all it was given (none to redeliver)
    expect(letters.length).toBe(wanted.size);
    const jsm = await bus.jsm();
    for (let attempt = 0; attempt < 300; attempt++) {
      const infos = await Promise.all(
        CONSUMERS.map(([stream, durable]) => jsm.consumers.info(bus.streamName(stream), durable)),
      );
      if (infos.every((info) => info.num_ack_pending === 0 && info.num_pending === 0)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const [stream, durable] of CONSUMERS) {
      const info = await jsm.consumers.info(bus.streamName(stream), durable);
      expect(info.num_ack_pending, durable).toBe(0);
      expect(info.num_redelivered, durable).toBe(0);
    }
    expect((await deadLetters()).filter((letter) => wanted.has(key(letter))).length).toBe(wanted.size);
  }, 90_000);
});

describe("run events", () => {
  it("a run's event stream skips garbage stored among its events and still ends", async () => {
    const created = await fetch(`${stack.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ input: "hi", wait: true }),
    });
    expect(created.status).toBe(200);
    const { id } = (await created.json()) as { id: string };
    for (const payload of [
      ...GARBAGE,
      encoder.encode(JSON.stringify({ type: "delta", runId: id, seq: "x" })),
    ])
      await bus.js.publish(bus.subject(Subjects.runEvents(id)), payload);
    const events = await fetch(`${stack.url}/v1/runs/${id}/events`, {
      headers: { authorization: `Bearer ${KEY}` },
      signal: AbortSignal.timeout(30_000),
    });
    expect(events.status).toBe(200);
    const text = await events.text();
    expect(text).toMatch(/run-finished/);
    expect(text).not.toMatch(/not json|\bat .+\.(ts|js):\d+/);
  }, 60_000);
});

describe("afterwards", () => {
  it("every service still serves: tools, memory, runs and a chat turn over HTTP", async () => {
    expect((await bus.request(Endpoints.toolList, { tenant: "default" })).tools.length).toBeGreaterThan(0);
    expect((await bus.request(Endpoints.runList, { meta: meta(), limit: 5 })).runs).toBeInstanceOf(Array);
    await bus.request(Endpoints.memoryMessages, { meta: meta(), threadId: "thread_none", limit: 5 });
    const response = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "still there?" }] }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe("ok");
  });
});
