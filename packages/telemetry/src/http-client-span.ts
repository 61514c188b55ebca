import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { getTracer } from "./span.js";

/**
 * A CLIENT span for an outgoing HTTP call made without fetch (which the SDK traces itself), named
 * and attributed the way the HTTP semantic conventions say, a child of the active span; the call's
 * W3C trace context is written into `headers`. End it with `endHttpClientSpan`.
 */
export function startHttpClientSpan(method: string, url: URL, headers: Record<string, string>): Span {
  const span = getTracer().startSpan(method, {
    kind: SpanKind.CLIENT,
    attributes: {
      "http.request.method": method,
      "url.full": url.href,
      "server.address": url.hostname,
      "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    },
  });
  propagation.inject(trace.setSpan(context.active(), span), headers);
  return span;
}

/** Ends a span of `startHttpClientSpan` with the response's status, or the error that ended the call. */
export function endHttpClientSpan(span: Span, outcome: { status: number } | { error: unknown }): void {
  if ("status" in outcome) {
    span.setAttribute("http.response.status_code", outcome.status);
    if (outcome.status >= 400) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute("error.type", String(outcome.status));
    }
  } else {
    const error = outcome.error;
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    span.setAttribute("error.type", error instanceof Error ? error.name : "_OTHER");
  }
  span.end();
}
