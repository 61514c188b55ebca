/** `POST /v1/events` with the official `cloudevents` SDK: binary, structured and batched modes, and plain JSON. */
import { CloudEvent, HTTP } from "cloudevents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;
let key: string;

beforeAll(async () => {
  harness = await startHarness({}, {}, { driver: false });
  key = await harness.key("acme");
}, 60_000);

afterAll(async () => {
  await harness?.stop();
});

interface Accepted {
  accepted: { id: string; duplicate: boolean; seq: number }[];
  error?: { type: string; message: string };
}

async function send(headers: Record<string, unknown>, body: unknown) {
  const response = await fetch(`${harness.url}/v1/events`, {
    method: "POST",
    headers: { ...(headers as Record<string, string>), authorization: `Bearer ${key}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Accepted };
}

/** The event as JetStream stored it. */
async function stored(seq: number): Promise<Record<string, unknown>> {
  const jsm = await harness.bus.jsm();
  const message = await jsm.streams.getMessage(harness.bus.streamName("EVENTS"), { seq });
  return message!.json<Record<string, unknown>>();
}

const order = (id: string) =>
  new CloudEvent({
    id,
    source: "/sdk/orders",
    type: "com.example.order.created",
    subject: "order-17",
    data: { order: 17, total: 42.5 },
    shopregion: "eu",
  });

describe("POST /v1/events with the cloudevents SDK", () => {
  it("accepts binary mode (ce-* headers, the data as the body)", async () => {
    const message = HTTP.binary(order("sdk-binary-1"));
    const answer = await send(message.headers, message.body);
    expect(answer.status).toBe(202);
    expect(answer.body.accepted).toMatchObject([{ id: "sdk-binary-1", duplicate: false }]);
    expect(await stored(answer.body.accepted[0]!.seq)).toMatchObject({
      specversion: "1.0",
      id: "sdk-binary-1",
      source: "/sdk/orders",
      type: "com.example.order.created",
      subject: "order-17",
      data: { order: 17, total: 42.5 },
      shopregion: "eu",
      tenant: "acme",
    });
  });

  it("accepts structured mode (application/cloudevents+json)", async () => {
    const message = HTTP.structured(order("sdk-structured-1"));
    expect(String(message.headers["content-type"])).toMatch(/application\/cloudevents\+json/);
    const answer = await send(message.headers, message.body);
    expect(answer.status).toBe(202);
    expect(await stored(answer.body.accepted[0]!.seq)).toMatchObject({
      id: "sdk-structured-1",
      data: { order: 17, total: 42.5 },
      shopregion: "eu",
    });
    // the same event again is recognised as a duplicate
    const again = await send(message.headers, message.body);
    expect(again.body.accepted).toMatchObject([{ id: "sdk-structured-1", duplicate: true }]);
  });

  it("accepts batched mode (application/cloudevents-batch+json) and plain JSON", async () => {
    const batch = [order("sdk-batch-1"), order("sdk-batch-2")];
    const answer = await send({ "content-type": "application/cloudevents-batch+json" }, batch);
    expect(answer.status).toBe(202);
    expect(answer.body.accepted.map((event) => event.id)).toEqual(["sdk-batch-1", "sdk-batch-2"]);
    const plain = await send(
      { "content-type": "application/json" },
      { specversion: "1.0", id: "plain-1", source: "/plain", type: "t", data: { a: 1 } },
    );
    expect(plain.status).toBe(202);
  });

  it("refuses what is not a valid CloudEvent with a 400 naming the field", async () => {
    const message = HTTP.binary(order("sdk-binary-bad"));
    const { "ce-source": _source, ...withoutSource } = message.headers as Record<string, string>;
    const missing = await send(withoutSource, message.body);
    expect(missing.status).toBe(400);
    expect(missing.body.error?.message).toMatch(/source/);
    // an id is never made up for the client (duplicates are found by it)
    const { "ce-id": _id, ...withoutId } = message.headers as Record<string, string>;
    const noId = await send(withoutId, message.body);
    expect(noId.status).toBe(400);
    expect(noId.body.error?.message).toMatch(/id/);
    const structured = HTTP.structured(order("x"));
    const broken = await send(structured.headers, { specversion: "1.0", source: "/s", type: "t" });
    expect(broken.status).toBe(400);
    expect(broken.body.error?.message).toMatch(/id/);
    const batch = await send({ "content-type": "application/cloudevents-batch+json" }, [
      { specversion: "1.0", id: "ok", source: "/s", type: "t" },
      { specversion: "1.0", source: "/s", type: "t" },
    ]);
    expect(batch.status).toBe(400);
    expect(batch.body.error?.message).toMatch(/\[1\]\.id|1\.id/);
  });
});
