export { Bus, connectBus } from "./bus.js";
export type { BusOptions, HandlerContext, PublishOptions, RequestOptions, ServeOptions, ServedEndpoint } from "./bus.js";
export { decodeText, decodeWith, encodeJson } from "./codec.js";
export { consume, nakDelay } from "./consumer.js";
export type { ConsumeContext, ConsumeOptions, ConsumerHandle } from "./consumer.js";
export { InFlightLimiter } from "./limiter.js";
export { StreamDefinitions } from "./streams.js";
export type { StreamName } from "./streams.js";
export { extractTraceContext, injectTraceContext } from "./trace.js";
