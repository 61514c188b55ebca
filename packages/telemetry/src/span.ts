import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/** Instrumentation scope of spans made through this package. */
export const DEFAULT_TRACER_NAME = "@agent-runtime";

export function getTracer(name: string = DEFAULT_TRACER_NAME): Tracer {
  return trace.getTracer(name);
}

export interface SpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  /** Parent context (for example one extracted from a `traceparent` header); the active one otherwise. */
  parent?: Context;
  /** Starts a trace of its own, whatever is active: for work done at once for many traces (a batch write). */
  root?: boolean;
}

/**
 * Runs `fn` inside a new active span. On a throw it records the exception,
 * sets ERROR status and rethrows; the span always ends.
 */
export function withSpan<T>(
  name: string,
  fn: (span: Span) => Promise<T> | T,
  options: SpanOptions = {},
): Promise<T> {
  const spanOptions = {
    kind: options.kind ?? SpanKind.INTERNAL,
    ...(options.attributes ? { attributes: options.attributes } : {}),
  };
  const parent = options.root ? ROOT_CONTEXT : (options.parent ?? context.active());
  return getTracer().startActiveSpan(name, spanOptions, parent, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      const exception = error instanceof Error ? error : new Error(String(error));
      span.recordException(exception);
      span.setStatus({ code: SpanStatusCode.ERROR, message: exception.message });
      span.setAttribute("error.type", errorType(error));
      throw error;
    } finally {
      span.end();
    }
  });
}

/** `error.type`: a typed error's code (`RuntimeError.code`), else the error's class name. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && code.length > 0) return code;
  return error instanceof Error ? error.name : "_OTHER";
}

export { SpanKind };
