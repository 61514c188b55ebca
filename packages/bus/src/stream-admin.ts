import type { JetStreamManager } from "@nats-io/jetstream";
import { isJetStreamError, JetStreamErrorCode } from "./jetstream-errors.js";

/*
 * Stream administration through the JetStream manager, behind `Bus.streamSubjectCount`,
 * `consumerBacklog`, `purgeStreamSubject`, `deleteStreamMessage` and `nextStreamMessageDirect`.
 * Stream names and subjects here are the server's (prefixed); the `Bus` methods take the runtime's.
 */

/** The messages a stream stores under a subject. */
export interface StreamSubjectCount {
  /** Messages stored under the subject. */
  messages: number;
  /** The first sequence the stream stores (under any subject): a read of the subject starts there. */
  firstSeq: number;
}

/** The backlog of a durable consumer. */
export interface ConsumerBacklog {
  /** Stored and not yet delivered: the consumer's lag. */
  pending: number;
  /** Delivered and not yet acknowledged. */
  ackPending: number;
}

/** A message read from a stream by sequence. */
export interface StreamMessage {
  seq: number;
  data: Uint8Array;
}

/** Throws a RangeError unless `seq` is a stream sequence (a whole number from `min`). */
export function checkSequence(seq: number, min = 0): void {
  if (!Number.isSafeInteger(seq) || seq < min)
    throw new RangeError(`a stream sequence is a whole number from ${min}, not ${seq}`);
}

/** STREAM.INFO with a subject filter; null when the stream is not there. */
export async function subjectCount(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
): Promise<StreamSubjectCount | null> {
  try {
    const info = await jsm.streams.info(stream, { subjects_filter: filter });
    const messages = Object.values(info.state.subjects ?? {}).reduce((sum, count) => sum + count, 0);
    return { messages, firstSeq: info.state.first_seq };
  } catch (error) {
    if (isJetStreamError(error, JetStreamErrorCode.streamNotFound)) return null;
    throw error;
  }
}

/** CONSUMER.INFO's pending counts; null when the consumer (or its stream) is not there. */
export async function backlog(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
): Promise<ConsumerBacklog | null> {
  try {
    const info = await jsm.consumers.info(stream, durable);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  } catch (error) {
    if (isJetStreamError(error, JetStreamErrorCode.consumerNotFound, JetStreamErrorCode.streamNotFound))
      return null;
    throw error;
  }
}

/** STREAM.PURGE of one subject; how many messages went. */
export async function purgeSubject(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  const response = await jsm.streams.purge(stream, { filter });
  return response.purged;
}

/** STREAM.MSG.DELETE with erasure; false when the message (or the stream) is not there. */
export async function eraseMessage(jsm: JetStreamManager, stream: string, seq: number): Promise<boolean> {
  checkSequence(seq, 1);
  try {
    return await jsm.streams.deleteMessage(stream, seq, true);
  } catch (error) {
    if (isJetStreamError(error, JetStreamErrorCode.messageDeleteFailed, JetStreamErrorCode.streamNotFound))
      return false;
    throw error;
  }
}

/** DIRECT.GET `next_by_subj` from `seq`; null when no message is left. */
export async function nextDirect(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  seq: number,
): Promise<StreamMessage | null> {
  checkSequence(seq);
  const message = await jsm.direct.getMessage(stream, { seq, next_by_subj: filter });
  return message && { seq: message.seq, data: message.data };
}
