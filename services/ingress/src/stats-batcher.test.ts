import { describe, expect, it } from "vitest";
import { IntervalBatcher } from "./stats-batcher.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("IntervalBatcher", () => {
  it("writes at most once per interval, everything that arrived since in one write, one write at a time", async () => {
    const writes: Array<{ at: number; items: number[]; done: number }> = [];
    let running = 0;
    let overlapped = false;
    const batcher = new IntervalBatcher<number>(async (items) => {
      running++;
      overlapped ||= running > 1;
      const at = performance.now();
      await sleep(30);
      running--;
      writes.push({ at, items, done: performance.now() });
    }, 200);
    const settled: Array<Promise<void>> = [];
    const started = performance.now();
    for (let item = 0; item < 40; item++) {
      settled.push(batcher.add(item));
      await sleep(15);
    }
    await Promise.all(settled);
    const elapsed = performance.now() - started;

    // the first item is written at once, the rest gathered per interval
    expect(writes[0]!.items).toEqual([0]);
    expect(writes.flatMap((write) => write.items)).toEqual(Array.from({ length: 40 }, (_, item) => item));
    expect(writes.length).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 1);
    expect(writes.length).toBeGreaterThanOrEqual(3);
    // timers may fire a millisecond or so early against performance.now()
    for (let index = 1; index < writes.length; index++)
      expect(writes[index]!.at - writes[index - 1]!.at).toBeGreaterThanOrEqual(195);
    expect(overlapped).toBe(false);
  });

  it("settles an item only when its write has finished, and rejects every item of a failed write", async () => {
    let fail = true;
    let finished = 0;
    const batcher = new IntervalBatcher<string>(async () => {
      await sleep(50);
      finished++;
      if (fail) throw new Error("store away");
    }, 100);
    const first = batcher.add("a");
    const states: string[] = [];
    void first.then(
      () => states.push("resolved"),
      () => states.push("rejected"),
    );
    await sleep(20);
    expect(states).toEqual([]); // the write is still going: nothing is acknowledged yet
    await expect(first).rejects.toThrow("store away");
    expect(finished).toBe(1);

    const second = [batcher.add("b"), batcher.add("c")];
    const results = await Promise.allSettled(second);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);

    fail = false;
    await expect(batcher.add("b")).resolves.toBeUndefined();
    expect(batcher.pending).toBe(0);
  });
});
