import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { createRedis } from "./redis.js";
import { describeWindowLimiter, MINUTE } from "./test-support/window-limiter-cases.js";
import { WindowLimiter } from "./window-limiter.js";

// nothing listens there: the limiter counts in the process, as it does while Redis is down
const down = createRedis("redis://127.0.0.1:1");
const prefix = `wlim${randomUUID().slice(0, 8)}:`;
const counter = (name: string, limit: number, amount?: number) => ({
  key: (window: number) => `${prefix}${name}:${window}`,
  limit,
  ...(amount === undefined ? {} : { amount }),
});

afterAll(() => {
  down.disconnect();
});

describeWindowLimiter("the process (Redis down)", () => down, false, prefix);

describe("window limiter input", () => {
  it("refuses what it cannot count", async () => {
    expect(() => new WindowLimiter(down, { windowMs: 0 })).toThrow(RangeError);
    const limiter = new WindowLimiter(down, { windowMs: MINUTE });
    await expect(limiter.take({ counts: [counter("x", 0)] })).rejects.toThrow(RangeError);
    await expect(limiter.take({ counts: [counter("x", 5, 1.5)] })).rejects.toThrow("whole number");
    await expect(limiter.take({ leases: [{ key: "x", limit: 1 }] })).rejects.toThrow("leaseMs");
    await expect(limiter.hold("x", 0)).rejects.toThrow(RangeError);
  });
});
