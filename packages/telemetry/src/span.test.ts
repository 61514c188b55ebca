import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { beforeAll, describe, expect, it } from "vitest";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";

/** The SDK's spans are readable once ended; the API type hides that. */
const readable = (span: Span | undefined) => span as unknown as ReadableSpan;

beforeAll(async () => {
  // nothing is exported here: spans are recorded only because the sampler says so
  process.env.OTEL_TRACES_SAMPLER = "always_on";
  await startTelemetry({ service: "span-test" });
});

describe("withSpan", () => {
  it("returns the result and ends the span with attributes and kind", async () => {
    let seen: Span | undefined;
    const result = await withSpan(
      "ok-work",
      async (span) => {
        seen = span;
        expect(trace.getActiveSpan()).toBe(span);
        return 42;
      },
      { attributes: { tenant: "t1" }, kind: SpanKind.CLIENT },
    );
    expect(result).toBe(42);
    const span = readable(seen);
    expect(span.ended).toBe(true);
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({ tenant: "t1" });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it("records the exception, sets ERROR status and rethrows", async () => {
    let seen: Span | undefined;
    const failure = new Error("boom");
    await expect(
      withSpan("failing", async (span) => {
        seen = span;
        throw failure;
      }),
    ).rejects.toBe(failure);
    const span = readable(seen);
    expect(span.ended).toBe(true);
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom" });
    expect(span.events.map((event) => event.name)).toContain("exception");
    expect(span.events[0]?.attributes).toMatchObject({ "exception.message": "boom" });
  });

  it("handles synchronous throws of non-errors", async () => {
    let seen: Span | undefined;
    await expect(
      withSpan("sync-failing", (span) => {
        seen = span;
        throw "plain string";
      }),
    ).rejects.toBe("plain string");
    expect(readable(seen).status).toEqual({ code: SpanStatusCode.ERROR, message: "plain string" });
  });

  it("nests under the active span, or under an explicit parent", async () => {
    await withSpan("outer", async (outer) => {
      await withSpan("inner", (inner) => {
        expect(inner.spanContext().traceId).toBe(outer.spanContext().traceId);
        expect(readable(inner).parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
      });
    });

    const parent = propagation.extract(context.active(), {
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    await withSpan(
      "remote-child",
      (span) => {
        expect(span.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
        expect(readable(span).parentSpanContext?.spanId).toBe("b7ad6b7169203331");
      },
      { parent },
    );
  });

  it("starts a trace of its own with root, whatever span is active", async () => {
    await withSpan("turn", async (turn) => {
      await withSpan(
        "batch write",
        (span) => {
          expect(span.spanContext().traceId).not.toBe(turn.spanContext().traceId);
          expect(readable(span).parentSpanContext).toBeUndefined();
        },
        { root: true },
      );
    });
  });
});
