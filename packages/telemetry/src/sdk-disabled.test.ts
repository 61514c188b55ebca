import { context, propagation, trace } from "@opentelemetry/api";
import { afterAll, describe, expect, it } from "vitest";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";

// Each test file runs in a fresh worker, so this file's process never started the SDK.
const saved = process.env.OTEL_SDK_DISABLED;
afterAll(() => {
  if (saved === undefined) delete process.env.OTEL_SDK_DISABLED;
  else process.env.OTEL_SDK_DISABLED = saved;
});

describe("startTelemetry with OTEL_SDK_DISABLED=true", () => {
  it("registers nothing: spans are no-ops and no traceparent is injected", async () => {
    process.env.OTEL_SDK_DISABLED = "true";
    const telemetry = await startTelemetry({ service: "disabled" });
    const carrier: Record<string, string> = {};
    await withSpan("noop", (span) => {
      expect(span.isRecording()).toBe(false);
      expect(trace.getActiveSpan()).toBeUndefined();
      propagation.inject(context.active(), carrier);
    });
    expect(carrier).toEqual({});
    await telemetry.shutdown();
  });
});
