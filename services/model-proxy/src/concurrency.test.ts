import { describe, expect, it } from "vitest";
import { ConcurrencyGate } from "./concurrency.js";

const signal = new AbortController().signal;

describe("concurrency gate", () => {
  it("bounds holders, hands slots over in order, and gives up after the wait", async () => {
    const gate = new ConcurrencyGate(2);
    expect(await gate.acquire("interactive", 0, signal)).toBe(true);
    expect(await gate.acquire("interactive", 0, signal)).toBe(true);
    expect(await gate.acquire("interactive", 0, signal)).toBe(false);
    const order: number[] = [];
    const third = gate.acquire("interactive", 1000, signal).then((ok) => order.push(3) && ok);
    const fourth = gate.acquire("interactive", 1000, signal).then((ok) => order.push(4) && ok);
    expect(gate.queued).toBe(2);
    gate.release("interactive");
    gate.release("interactive");
    expect(await third).toBe(true);
    expect(await fourth).toBe(true);
    expect(order).toEqual([3, 4]);
    expect(gate.inFlight).toBe(2);
    expect(await gate.acquire("interactive", 30, signal)).toBe(false);
    expect(gate.queued).toBe(0);
  });

  it("rejects a waiter whose caller gave up", async () => {
    const gate = new ConcurrencyGate(1);
    const controller = new AbortController();
    await gate.acquire("interactive", 0, controller.signal);
    const waiting = gate.acquire("batch", 1000, controller.signal);
    controller.abort(new Error("caller left"));
    await expect(waiting).rejects.toThrow("caller left");
    expect(gate.queued).toBe(0);
  });
});

describe("concurrency gate lanes", () => {
  it("keeps the reserved slots for interactive calls: batch waits at its share", async () => {
    const gate = new ConcurrencyGate(4, 1);
    expect(gate.batchLimit).toBe(3);
    for (let i = 0; i < 3; i++) expect(await gate.acquire("batch", 0, signal)).toBe(true);
    expect(await gate.acquire("batch", 0, signal)).toBe(false);
    // the fourth slot is free, but only for interactive work
    expect(await gate.acquire("interactive", 0, signal)).toBe(true);
    expect(gate.inFlight).toBe(4);
  });

  it("serves a waiting interactive call before every batch call queued earlier", async () => {
    const gate = new ConcurrencyGate(2);
    await gate.acquire("batch", 0, signal);
    await gate.acquire("batch", 0, signal);
    const order: string[] = [];
    const batchWaits = Array.from({ length: 5 }, (_, index) =>
      gate.acquire("batch", 5000, signal).then((ok) => {
        order.push(`batch${index}`);
        return ok;
      }),
    );
    const interactive = gate.acquire("interactive", 5000, signal).then((ok) => {
      order.push("interactive");
      return ok;
    });
    expect(gate.queuedIn("batch")).toBe(5);
    expect(gate.queuedIn("interactive")).toBe(1);
    gate.release("batch");
    expect(await interactive).toBe(true);
    expect(order).toEqual(["interactive"]);
    // the batch queue drains in its own order as slots come back
    gate.release("interactive");
    gate.release("batch");
    for (let i = 0; i < 5; i++) {
      await batchWaits[i];
      gate.release("batch");
    }
    expect(order).toEqual(["interactive", "batch0", "batch1", "batch2", "batch3", "batch4"]);
    expect(gate.inFlight).toBe(0);
  });

  it("lets a new batch call not overtake queued batch calls, nor start while interactive ones wait", async () => {
    const gate = new ConcurrencyGate(3, 1);
    await gate.acquire("batch", 0, signal);
    await gate.acquire("batch", 0, signal);
    const queuedBatch = gate.acquire("batch", 5000, signal);
    // room for interactive only; a new batch call queues behind the first
    expect(await gate.acquire("batch", 0, signal)).toBe(false);
    expect(await gate.acquire("interactive", 0, signal)).toBe(true);
    gate.release("batch");
    expect(await queuedBatch).toBe(true);
    expect(gate.inFlight).toBe(3);
  });

  it("on close, waiting batch calls give up and new ones take only a free slot; interactive ones keep waiting", async () => {
    const gate = new ConcurrencyGate(1);
    await gate.acquire("interactive", 0, signal);
    const batch = gate.acquire("batch", 60_000, signal);
    const interactive = gate.acquire("interactive", 60_000, signal);
    gate.close();
    expect(await batch).toBe(false);
    expect(await gate.acquire("batch", 60_000, signal)).toBe(false);
    gate.release("interactive");
    expect(await interactive).toBe(true);
  });
});
