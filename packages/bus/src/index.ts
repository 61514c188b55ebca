export type {
  BusOptions,
  HandlerContext,
  PublishOptions,
  RequestOptions,
  RetryOptions,
  ServedEndpoint,
  ServeOptions,
} from "./bus.js";
export { Bus, connectBus, natsServers } from "./bus.js";
export { decodeText, decodeWith, encodeJson } from "./codec.js";
export type { ConsumeContext, ConsumeOptions, ConsumerHandle, DeadLetterContext } from "./consumer.js";
export { consume, nakDelay } from "./consumer.js";
export { describeNats } from "./describe.js";
export {
  isConsumerExists,
  isJetStreamError,
  isReplicasNotSupported,
  isStreamExists,
  JetStreamErrorCode,
} from "./jetstream-errors.js";
export type { Admission, InteractiveReserveOptions } from "./lanes.js";
export { interactiveReserve, reservedSlots } from "./lanes.js";
export { InFlightLimiter } from "./limiter.js";
export type { BusLogger } from "./logger.js";
export { silentLogger } from "./logger.js";
export { RunCancellation } from "./run-cancellation.js";
export type { ConsumerBacklog, StreamMessage, StreamSubjectCount } from "./stream-admin.js";
export type { StreamName } from "./streams.js";
export { StreamDefinitions } from "./streams.js";
export { extractTraceContext, injectTraceContext } from "./trace.js";
