import { randomUUID } from "node:crypto";
import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  isConsumerExists,
  isJetStreamError,
  isReplicasNotSupported,
  isStreamExists,
  JetStreamErrorCode,
} from "./jetstream-errors.js";

// the codes are read from the real server's answers, so a renumbering (or a wrong name) fails here
let nc: NatsConnection;
let stream: string;
beforeEach(async () => {
  nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
  stream = `ERRCODES_${randomUUID().replaceAll("-", "")}`;
});
afterEach(async () => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(stream).catch(() => undefined);
  await nc.close();
});

const refusal = (work: Promise<unknown>) =>
  work.then(
    () => {
      throw new Error("the server accepted what it should refuse");
    },
    (error: unknown) => error,
  );

describe("JetStream error codes", () => {
  it("names the server's answers to a stream that exists, a missing message and a replicated stream", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], max_msgs: 10 });
    const exists = await refusal(jsm.streams.add({ name: stream, subjects: [`${stream}.>`], max_msgs: 20 }));
    expect(exists).toBeInstanceOf(JetStreamApiError);
    expect((exists as JetStreamApiError).code).toBe(JetStreamErrorCode.streamNameExists);
    expect(isStreamExists(exists)).toBe(true);
    expect(isConsumerExists(exists)).toBe(false);

    // read raw, as the forget scan does (the client turns this answer into null)
    const answer = await nc.request(`$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify({ seq: 1 }));
    const missing = answer.json<{ error?: { code: number; err_code?: number } }>();
    expect(missing.error?.err_code).toBe(JetStreamErrorCode.noMessageFound);

    const replicated = await refusal(
      jsm.streams.add({ name: `${stream}_R3`, subjects: [`${stream}r3.>`], num_replicas: 3 }),
    );
    // a single server (the test's) refuses replicas; a cluster would accept them
    if (replicated instanceof JetStreamApiError) expect(isReplicasNotSupported(replicated)).toBe(true);
  });

  it("takes either code newer and older servers give a consumer that exists with another config", () => {
    // NATS 2.9 (the test server) updates such a consumer in place instead, so these are built here
    const apiError = (errCode: number) =>
      new JetStreamApiError({ code: 400, err_code: errCode, description: "consumer already exists" });
    expect(isConsumerExists(apiError(JetStreamErrorCode.consumerExists))).toBe(true);
    expect(isConsumerExists(apiError(JetStreamErrorCode.consumerNameExists))).toBe(true);
    expect(isConsumerExists(apiError(JetStreamErrorCode.consumerNotFound))).toBe(false);
    expect(isStreamExists(apiError(JetStreamErrorCode.consumerExists))).toBe(false);
  });

  it("is false for anything that is not a JetStream API error", () => {
    expect(isJetStreamError(new Error("10058"), JetStreamErrorCode.streamNameExists)).toBe(false);
    expect(isJetStreamError({ code: 10058 }, JetStreamErrorCode.streamNameExists)).toBe(false);
    expect(isJetStreamError(undefined, JetStreamErrorCode.streamNameExists)).toBe(false);
  });
});
