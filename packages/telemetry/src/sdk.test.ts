import { context, propagation, trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";

describe("startTelemetry", () => {
  it("is idempotent", async () => {
    const first = startTelemetry({ service: "sdk-test" });
    const second = startTelemetry({ service: "other" });
    expect(second).toBe(first);
    expect(await second).toBe(await first);
  });

  it("injects a W3C traceparent for the active span and extracts it back", async () => {
    await startTelemetry({ service: "sdk-test" });
    const carrier: Record<string, string> = {};
    let traceId = "";
    let spanId = "";
    await withSpan("outgoing", (span) => {
      ({ traceId, spanId } = span.spanContext());
      propagation.inject(context.active(), carrier);
    });
    // nothing is exported here: the span is not recorded (flags 00), its ids are real all the same
    expect(traceId).toMatch(/^(?!0+$)[0-9a-f]{32}$/);
    expect(spanId).toMatch(/^(?!0+$)[0-9a-f]{16}$/);
    expect(carrier.traceparent).toBe(`00-${traceId}-${spanId}-00`);

    const extracted = trace.getSpanContext(propagation.extract(context.active(), carrier));
    expect(extracted).toMatchObject({ traceId, spanId, isRemote: true });
  });

  it("records nothing per span when nothing is exported, and a child keeps its parent's trace", async () => {
    await startTelemetry({ service: "sdk-test" });
    await withSpan("parent", async (parent) => {
      expect(parent.isRecording()).toBe(false);
      await withSpan("child", (child) => {
        expect(child.isRecording()).toBe(false);
        expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
        expect(child.spanContext().spanId).not.toBe(parent.spanContext().spanId);
      });
    });
  });

  it("keeps context across awaits (AsyncLocalStorage)", async () => {
    await startTelemetry({ service: "sdk-test" });
    await withSpan("parent", async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(trace.getActiveSpan()).toBe(span);
    });
  });
});
