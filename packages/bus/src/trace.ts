import { type Attributes, metaAttributes, SpanAttribute } from "@agent-runtime/telemetry";
import type { MsgHdrs } from "@nats-io/nats-core";
import { type Context, context, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

/**
 * W3C trace context in NATS headers. A local propagator is used so that
 * context crosses hops even when no OpenTelemetry SDK is registered.
 */
const propagator = new W3CTraceContextPropagator();

const setter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  get(carrier, key) {
    return carrier?.get(key) || undefined;
  },
  keys(carrier) {
    return carrier ? carrier.keys() : [];
  },
};

export function injectTraceContext(headers: MsgHdrs, from: Context = context.active()): void {
  propagator.inject(from, headers, setter);
}

export function extractTraceContext(headers: MsgHdrs | undefined, base: Context = context.active()): Context {
  if (!headers) return base;
  return propagator.extract(base, headers, getter);
}

/**
 * Attributes of a span around a message: the subject without the bus prefix, and the tenant, run,
 * agent and lane of its `meta` when it has one.
 */
export function messageAttributes(subject: string, payload: unknown): Attributes {
  return {
    [SpanAttribute.messagingSystem]: "nats",
    [SpanAttribute.destination]: subject,
    ...metaAttributes(payload),
  };
}
