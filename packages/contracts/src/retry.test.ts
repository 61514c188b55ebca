import { describe, expect, it } from "vitest";
import { backoffMs, type RetryOptions, retryUntilDeadline } from "./retry.js";

class Flaky extends Error {}
class Refused extends Error {}

/** A clock that only moves when the retry sleeps, so every wait is seen and none is real. */
function fakeTime(start = 1_000_000) {
  let clock = start;
  const waits: number[] = [];
  return {
    waits,
    now: () => clock,
    sleep: async (ms: number) => {
      waits.push(ms);
      clock += ms;
    },
  };
}

const failing = (times: number, error: () => Error = () => new Flaky("down")) => {
  let calls = 0;
  const operation = async () => {
    calls++;
    if (calls <= times) throw error();
    return `ok after ${calls}`;
  };
  return { operation, calls: () => calls };
};

describe("backoffMs", () => {
  it("doubles from the base up to the cap", () => {
    const exact = { baseMs: 100, maxMs: 2000, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(attempt, exact))).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000,
    ]);
  });

  it("keeps jitter between (1 - jitter) and 1 of the backoff", () => {
    for (const random of [0, 0.25, 0.5, 0.999999]) {
      const wait = backoffMs(3, { baseMs: 50, maxMs: 2000, jitter: 0.5 }, () => random);
      expect(wait).toBeGreaterThanOrEqual(200);
      expect(wait).toBeLessThanOrEqual(400);
    }
    expect(backoffMs(3, { baseMs: 50 }, () => 0)).toBe(200);
    expect(backoffMs(3, { baseMs: 50 }, () => 1)).toBe(400);
  });

  it("takes a longer wait the error asks for as the backoff, jittered like any other", () => {
    expect(backoffMs(0, { baseMs: 100, jitter: 0 }, Math.random, 1500)).toBe(1500);
    expect(backoffMs(0, { baseMs: 100, jitter: 0.5 }, () => 0, 1500)).toBe(750);
  });
});

describe("retryUntilDeadline", () => {
  it("retries until the operation succeeds, each wait longer than the last", async () => {
    const time = fakeTime();
    const { operation, calls } = failing(4);
    const result = await retryUntilDeadline(operation, {
      deadline: time.now() + 60_000,
      baseMs: 100,
      jitter: 0,
      now: time.now,
      sleep: time.sleep,
    });
    expect(result).toBe("ok after 5");
    expect(calls()).toBe(5);
    expect(time.waits).toEqual([100, 200, 400, 800]);
  });

  it("draws each wait inside its jitter band", async () => {
    const time = fakeTime();
    const { operation } = failing(6);
    await retryUntilDeadline(operation, {
      deadline: time.now() + 60_000,
      baseMs: 50,
      maxMs: 2000,
      now: time.now,
      sleep: time.sleep,
    });
    expect(time.waits).toHaveLength(6);
    time.waits.forEach((wait, attempt) => {
      const backoff = Math.min(2000, 50 * 2 ** attempt);
      expect(wait).toBeGreaterThanOrEqual(backoff / 2);
      expect(wait).toBeLessThanOrEqual(backoff);
    });
  });

  it("stops at the deadline, throwing the last error, without a wait past it", async () => {
    const time = fakeTime();
    const deadline = time.now() + 1000;
    let attempt = 0;
    const thrown = await retryUntilDeadline(
      async () => {
        attempt++;
        throw new Flaky(`down ${attempt}`);
      },
      { deadline, baseMs: 100, jitter: 0, now: time.now, sleep: time.sleep },
    ).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(Flaky);
    // 100 + 200 + 400 = 700 ms slept; the next wait (800) would end past the deadline
    expect(time.waits).toEqual([100, 200, 400]);
    expect((thrown as Error).message).toBe("down 4");
    expect(time.now()).toBeLessThan(deadline);
  });

  it("gives up at a deadline on the real clock", async () => {
    const started = Date.now();
    const thrown = await retryUntilDeadline(
      async () => {
        throw new Flaky("down");
      },
      { deadline: started + 150, baseMs: 20, jitter: 0 },
    ).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(Flaky);
    expect(Date.now() - started).toBeLessThan(150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60); // slept 20 + 40 at least
  });

  it("stops once the signal is aborted, after the attempt under way", async () => {
    const time = fakeTime();
    const controller = new AbortController();
    let calls = 0;
    const thrown = await retryUntilDeadline(
      async () => {
        calls++;
        if (calls === 3) controller.abort();
        throw new Flaky(`down ${calls}`);
      },
      { deadline: time.now() + 60_000, signal: controller.signal, now: time.now, sleep: time.sleep },
    ).catch((error: unknown) => error);
    expect(calls).toBe(3);
    expect((thrown as Error).message).toBe("down 3");
    expect(time.waits).toHaveLength(2);
  });

  it("throws a permanent error at once, without waiting", async () => {
    const time = fakeTime();
    const { operation, calls } = failing(5, () => new Refused("bad data"));
    const options: RetryOptions = {
      deadline: time.now() + 60_000,
      isPermanent: (error) => error instanceof Refused,
      now: time.now,
      sleep: time.sleep,
    };
    await expect(retryUntilDeadline(operation, options)).rejects.toBeInstanceOf(Refused);
    expect(calls()).toBe(1);
    expect(time.waits).toEqual([]);
  });

  it("waits at least what the error asks for, and reports each retry", async () => {
    const time = fakeTime();
    const { operation } = failing(2);
    const seen: [number, number][] = [];
    await retryUntilDeadline(operation, {
      deadline: time.now() + 60_000,
      baseMs: 100,
      jitter: 0,
      retryAfterMs: () => 700,
      onRetry: (_error, attempt, wait) => seen.push([attempt, wait]),
      now: time.now,
      sleep: time.sleep,
    });
    expect(time.waits).toEqual([700, 700]);
    expect(seen).toEqual([
      [0, 700],
      [1, 700],
    ]);
  });

  it("passes the attempt number to the operation", async () => {
    const time = fakeTime();
    const attempts: number[] = [];
    await retryUntilDeadline(
      async (attempt) => {
        attempts.push(attempt);
        if (attempt < 2) throw new Flaky("down");
      },
      { deadline: time.now() + 60_000, now: time.now, sleep: time.sleep },
    );
    expect(attempts).toEqual([0, 1, 2]);
  });
});
