import { JetStreamApiError } from "@nats-io/jetstream";

/**
 * The JetStream API error codes (`err_code`) the runtime acts on, named as nats-server names them
 * (server/errors.json). Never compare a bare number: use these or the predicates below.
 */
export const JetStreamErrorCode = {
  /** JSConsumerNameExistErr: a consumer of that name exists with another config (older servers). */
  consumerNameExists: 10013,
  /** JSConsumerNotFoundErr. */
  consumerNotFound: 10014,
  /** JSNoMessageFoundErr: STREAM.MSG.GET found no message. */
  noMessageFound: 10037,
  /**
   * JSStreamMsgDeleteFailedF: the store refused a STREAM.MSG.DELETE, in practice because the message
   * is not there (`no message found`, or `stream store EOF` past the last sequence).
   */
  messageDeleteFailed: 10057,
  /** JSStreamNameExistErr: a stream of that name exists with another config. */
  streamNameExists: 10058,
  /** JSStreamNotFoundErr. */
  streamNotFound: 10059,
  /** JSStreamReplicasNotSupportedErr: more than one replica asked of a server that is not a cluster. */
  replicasNotSupported: 10074,
  /** JSConsumerAlreadyExists: a consumer of that name exists with another config. */
  consumerExists: 10148,
} as const;
export type JetStreamErrorCode = (typeof JetStreamErrorCode)[keyof typeof JetStreamErrorCode];

/** Whether `error` is a JetStream API error with one of `codes`. */
export function isJetStreamError(error: unknown, ...codes: JetStreamErrorCode[]): error is JetStreamApiError {
  return error instanceof JetStreamApiError && codes.includes(error.code as JetStreamErrorCode);
}

/** A stream add refused because the stream exists (with another config): update it instead. */
export const isStreamExists = (error: unknown) =>
  isJetStreamError(error, JetStreamErrorCode.streamNameExists);

/** A consumer add refused because the consumer exists (either code, by server version): update it. */
export const isConsumerExists = (error: unknown) =>
  isJetStreamError(error, JetStreamErrorCode.consumerExists, JetStreamErrorCode.consumerNameExists);

/** A stream asked for replicas a single server cannot give. */
export const isReplicasNotSupported = (error: unknown) =>
  isJetStreamError(error, JetStreamErrorCode.replicasNotSupported);
