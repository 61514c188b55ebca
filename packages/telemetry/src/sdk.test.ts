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
    expect(carrier.traceparent).toBe(`00-${traceId}-${spanId}-01`);

    const extracted = trace.getSpanContext(propagation.extract(context.active(), carrier));
    expect(extracted).toMatchObject({ traceId, spanId, isRemote: true });
  });

  it("keeps context across awaits (AsyncLocalStorage)", async () => {
    await startTelemetry({ service: "sdk-test" });
    await withSpan("parent", async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(trace.getActiveSpan()).toBe(span);
    });
  });
});
