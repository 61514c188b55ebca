import type { Redis } from "ioredis";
import { describe, expect, it, vi } from "vitest";
import { type TakeOutcome, WindowLimiter } from "../window-limiter.js";

export const MINUTE = 60_000;
/** A clock in the middle of a window two minutes from now (keys of their own, whatever the real time). */
export const aWindow = () => Math.floor(Date.now() / MINUTE) * MINUTE + 2 * MINUTE;
export const taken = (outcome: TakeOutcome) => outcome.taken;

/**
 * The window limiter's behaviour, the same whether it counts in Redis (`shared`) or in the process
 * (Redis down): the unit test runs it on a client that reaches no server, the integration test on Redis.
 */
export function describeWindowLimiter(
  label: string,
  client: () => Redis,
  shared: boolean,
  prefix: string,
): void {
  const counter = (name: string, limit: number, amount?: number) => ({
    key: (window: number) => `${prefix}${name}:${window}`,
    limit,
    ...(amount === undefined ? {} : { amount }),
  });
  describe(`window limiter in ${label}`, () => {
    const name = (what: string) => `${shared ? "redis" : "local"}-${what}`;

    it("counts in fixed windows, names the full counter, and takes all or nothing", async () => {
      const limiter = new WindowLimiter(client(), { windowMs: MINUTE });
      const now = aWindow() + 1000;
      const tight = counter(name("tight"), 2);
      const loose = counter(name("loose"), 100);
      const first = await limiter.take({ counts: [loose, tight], now });
      expect(first).toMatchObject({ taken: true, shared, tightest: { index: 1, current: 0, previous: 0 } });
      expect(taken(await limiter.take({ counts: [loose, tight], now }))).toBe(true);
      expect(await limiter.take({ counts: [loose, tight], now })).toEqual({
        taken: false,
        refusedBy: "count",
        index: 1,
        current: 2,
        previous: 0,
      });
      // the refused take counted nowhere: the loose counter stands at 2
      const after = await limiter.take({ counts: [loose], now });
      expect(after).toMatchObject({ taken: true, tightest: { index: 0, current: 2 } });
      // the next window starts empty
      expect(taken(await limiter.take({ counts: [tight], now: now + MINUTE }))).toBe(true);
    });

    it("adds amounts, lets one oversized take through an empty window, and takes back with add", async () => {
      const limiter = new WindowLimiter(client(), { windowMs: MINUTE });
      const now = aWindow() + 1000;
      expect(taken(await limiter.take({ counts: [counter(name("big"), 50, 500)], now }))).toBe(true);
      expect(taken(await limiter.take({ counts: [counter(name("big"), 50, 1)], now }))).toBe(false);
      const tokens = (amount: number) => counter(name("tokens"), 250, amount);
      expect(taken(await limiter.take({ counts: [tokens(100)], now }))).toBe(true);
      expect(taken(await limiter.take({ counts: [tokens(100)], now }))).toBe(true);
      expect(taken(await limiter.take({ counts: [tokens(100)], now }))).toBe(false);
      await limiter.add(tokens(0), -160, now);
      expect(taken(await limiter.take({ counts: [tokens(100)], now }))).toBe(true);
    });

    it("slides: the previous window counts by the share of it still inside the window", async () => {
      const limiter = new WindowLimiter(client(), { windowMs: MINUTE, sliding: true });
      const minute = aWindow();
      const rate = counter(name("slide"), 10);
      for (let index = 0; index < 10; index++)
        expect(taken(await limiter.take({ counts: [rate], now: minute + 54_000 }))).toBe(true);
      expect(taken(await limiter.take({ counts: [rate], now: minute + 54_000 }))).toBe(false);
      // 6 s into the next window 90% of the previous one's 10 still count: room for one
      const next = minute + MINUTE + 6000;
      expect(await limiter.take({ counts: [rate], now: next })).toMatchObject({
        taken: true,
        tightest: { current: 0, previous: 10 },
      });
      expect(await limiter.take({ counts: [rate], now: next })).toMatchObject({
        taken: false,
        refusedBy: "count",
        current: 1,
        previous: 10,
      });
      // late in that window the previous one hardly counts
      for (let index = 0; index < 8; index++)
        expect(taken(await limiter.take({ counts: [rate], now: minute + MINUTE + 54_000 }))).toBe(true);
    });

    it("leases: full at the limit, free again once released or expired", async () => {
      const limiter = new WindowLimiter(client(), { windowMs: MINUTE });
      const runs = { key: `${prefix}${name("runs")}`, limit: 1 };
      const held = await limiter.take({ leases: [runs], leaseMs: 60_000 });
      expect(held.taken).toBe(true);
      expect(await limiter.take({ leases: [runs], leaseMs: 60_000 })).toEqual({
        taken: false,
        refusedBy: "lease",
        index: 0,
        active: 1,
      });
      if (held.taken) held.release();
      await vi.waitFor(async () =>
        expect(taken(await limiter.take({ leases: [runs], leaseMs: 200 }))).toBe(true),
      );
      // never given back: it expires
      expect(taken(await limiter.take({ leases: [runs], leaseMs: 60_000 }))).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(taken(await limiter.take({ leases: [runs], leaseMs: 60_000 }))).toBe(true);
    });

    it("a hold refuses every take naming it until it ends, and is never shortened", async () => {
      const one = new WindowLimiter(client(), { windowMs: MINUTE });
      const hold = `${prefix}${name("hold")}`;
      await one.hold(hold, 300);
      expect(one.heldFor(hold)).toBeGreaterThan(200);
      const refused = await one.take({ counts: [counter(name("held"), 5)], hold });
      expect(refused).toMatchObject({ taken: false, refusedBy: "hold" });
      expect((refused as { waitMs: number }).waitMs).toBeLessThanOrEqual(300);
      await one.hold(hold, 10);
      expect(taken(await one.take({ hold }))).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 320));
      expect(taken(await one.take({ hold }))).toBe(true);
      expect(one.heldFor(hold)).toBe(0);
    });
  });
}
