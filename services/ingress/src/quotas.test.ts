import { RuntimeError } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { QuotaReached, tightestTokens } from "./quotas.js";
import { formatDuration } from "./response-headers.js";

describe("tightestTokens", () => {
  const now = Date.UTC(2026, 11, 3, 22, 30, 15, 250);
  const toMidnight = Date.UTC(2026, 11, 4) - now;

  it("is the token quota with the fewest tokens left, reset at the next UTC midnight", () => {
    const user = { tokensPerDay: 300 };
    const tenant = { tokensPerDay: 1000 };
    expect(tightestTokens([user, tenant], [{ tokensToday: 120 }, { tokensToday: 500 }], now)).toEqual({
      limit: 300,
      remaining: 180,
      resetMs: toMidnight,
    });
    expect(tightestTokens([user, tenant], [{ tokensToday: 10 }, { tokensToday: 950 }], now)).toEqual({
      limit: 1000,
      remaining: 50,
      resetMs: toMidnight,
    });
  });

  it("never tells fewer than 0 left, and takes the smaller limit on a tie", () => {
    const spent = [{ tokensToday: 1200 }, { tokensToday: 400 }];
    expect(tightestTokens([{ tokensPerDay: 1000 }, { tokensPerDay: 400 }], spent, now)).toMatchObject({
      limit: 400,
      remaining: 0,
    });
  });

  it("leaves out scopes without a token limit or whose totals could not be read", () => {
    expect(tightestTokens([{ tokensPerDay: undefined }], [{ tokensToday: 50 }], now)).toBeUndefined();
    expect(tightestTokens([{ tokensPerDay: 100 }], [undefined], now)).toBeUndefined();
    expect(
      tightestTokens([{ tokensPerDay: 100 }, { tokensPerDay: 5000 }], [undefined, { tokensToday: 10 }], now),
    ).toMatchObject({ limit: 5000, remaining: 4990 });
    expect(tightestTokens([], [], now)).toBeUndefined();
  });

  it("is carried by the rate_limited error of a refused quota", () => {
    const tokens = { limit: 100, remaining: 0, resetMs: 1000 };
    const error = new QuotaReached("quota reached", { retryAfterMs: 1000, details: {}, tokens });
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error.toWire()).toMatchObject({ code: "rate_limited", retryAfterMs: 1000 });
    expect(error.tokens).toBe(tokens);
  });
});

describe("formatDuration", () => {
  it("writes OpenAI's reset durations, hours included", () => {
    expect(formatDuration(20)).toBe("20ms");
    expect(formatDuration(1000)).toBe("1s");
    expect(formatDuration(360_000)).toBe("6m0s");
    expect(formatDuration(3_600_000)).toBe("1h0m0s");
    expect(formatDuration(86_399_001)).toBe("24h0m0s");
    expect(formatDuration(86_399_000)).toBe("23h59m59s");
  });
});
