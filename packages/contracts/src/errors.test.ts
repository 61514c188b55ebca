import { describe, expect, it } from "vitest";
import { z } from "zod";
import { RuntimeError, toWireError } from "./errors.js";

describe("wire errors", () => {
  it("keep a typed error as it is and a schema failure as validation", () => {
    expect(toWireError(new RuntimeError("rate_limited", "slow down"))).toMatchObject({
      code: "rate_limited",
      message: "slow down",
    });
    const parsed = z.object({ n: z.number() }).safeParse({ n: "x" });
    expect(toWireError(parsed.error)).toMatchObject({ code: "validation", retryable: false });
  });

  it("call a failed connection unavailable and retryable, anything else internal", () => {
    const nats = new Error("connection disconnected");
    nats.name = "RequestError";
    expect(toWireError(nats)).toMatchObject({ code: "unavailable", retryable: true });
    const socket = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(toWireError(socket)).toMatchObject({ code: "unavailable", retryable: true });
    expect(toWireError(new Error("Connection terminated unexpectedly"))).toMatchObject({
      code: "unavailable",
      retryable: true,
    });
    expect(toWireError(new TypeError("x is not a function"))).toEqual({
      code: "internal",
      message: "internal error",
      retryable: false,
    });
  });
});
