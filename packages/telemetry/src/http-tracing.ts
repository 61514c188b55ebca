import {
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { getTracer, SpanKind } from "./span.js";
import { annotateSpan, type SpanAttributeValues } from "./span-attributes.js";

/** Like the bus's: a caller's `traceparent` is honoured even when no SDK is registered. */
const w3c = new W3CTraceContextPropagator();

interface RequestTrace {
  span: Span;
  context: Context;
}

const headerGetter: TextMapGetter<FastifyRequest["headers"]> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

const traces = new WeakMap<FastifyRequest, RequestTrace>();

/**
 * A SERVER span per HTTP request (`POST /v1/chat/completions`: method and route), the root of the
 * work the request causes unless the client sent a W3C `traceparent`, which it then continues.
 * The span is active in the hooks and the route handler, so NATS messages sent while answering
 * carry it. Register before the routes.
 */
export function registerHttpTracing(app: FastifyInstance): void {
  app.addHook("onRequest", (request, _reply, done) => {
    const parent = w3c.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const route = request.routeOptions.url;
    const span = getTracer().startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "http.request.method": request.method,
          "url.path": request.url.split("?")[0] ?? request.url,
          ...(route ? { "http.route": route } : {}),
          ...(request.headers["user-agent"] ? { "user_agent.original": request.headers["user-agent"] } : {}),
        },
      },
      parent,
    );
    const active = trace.setSpan(parent, span);
    traces.set(request, { span, context: active });
    context.with(active, done);
  });
  // the body is read in the socket's own async context: the handler gets the span back here
  app.addHook("preHandler", (request, _reply, done) => {
    const current = traces.get(request);
    if (current) context.with(current.context, done);
    else done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    endRequestSpan(request, reply.statusCode);
    done();
  });
  app.addHook("onRequestAbort", (request, done) => {
    endRequestSpan(request, 499, "client closed the request");
    done();
  });
}

/**
 * Sets attributes on a request's HTTP span (e.g. its tenant once its key is known), whatever
 * span is active where it is called; a no-op for a request that is not traced or has been answered.
 */
export function annotateRequestSpan(request: FastifyRequest, attributes: SpanAttributeValues): void {
  const current = traces.get(request);
  if (current) annotateSpan(attributes, current.span);
}

function endRequestSpan(request: FastifyRequest, status: number, abortedBecause?: string): void {
  const current = traces.get(request);
  if (!current) return;
  traces.delete(request);
  const { span } = current;
  span.setAttribute("http.response.status_code", status);
  if (status >= 500 || abortedBecause) {
    span.setAttribute("error.type", abortedBecause ? "aborted" : String(status));
    span.setStatus({ code: SpanStatusCode.ERROR, ...(abortedBecause ? { message: abortedBecause } : {}) });
  }
  span.end();
}
