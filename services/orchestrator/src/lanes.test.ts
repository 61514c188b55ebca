import { describe, expect, it } from "vitest";
import { BatchGate } from "./lanes.js";
import { RunHandedOff } from "./run-control.js";

const never = new AbortController().signal;

describe("batch gate", () => {
  it("lets batch runs use every slot while no interactive run is in progress", async () => {
    const gate = new BatchGate(3, 1);
    await gate.batchRun("a", never);
    await gate.batchRun("b", never);
    await gate.batchRun("c", never);
    let fourth = false;
    void gate.batchRun("d", never).then(() => {
      fourth = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fourth).toBe(false);
    expect(gate.waiting).toBe(1);
  });

  it("starts no new batch run past the busy share while interactive runs go on, and resumes after", async () => {
    const gate = new BatchGate(4, 1);
    const endInteractive = gate.interactiveRun();
    const first = await gate.batchRun("a", never);
    const started: string[] = [];
    const second = gate.batchRun("b", never).then((end) => {
      started.push("b");
      return end;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(started).toEqual([]);
    // the batch run in progress ending frees the one slot batch has while interactive is busy
    first();
    (await second)();
    expect(started).toEqual(["b"]);
    await gate.batchRun("c", never);
    let fourth = false;
    void gate.batchRun("d", never).then(() => {
      fourth = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fourth).toBe(false);
    endInteractive();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fourth).toBe(true);
  });

  it("hands a waiting batch run back when the worker drains", async () => {
    const gate = new BatchGate(1, 0);
    await gate.batchRun("a", never);
    const drain = new AbortController();
    const waiting = gate.batchRun("b", drain.signal);
    drain.abort();
    await expect(waiting).rejects.toBeInstanceOf(RunHandedOff);
  });

  it("starts no batch run beside interactive ones by default, until the oldest has waited its bound", async () => {
    const gate = new BatchGate(4, 0, 200);
    const endInteractive = gate.interactiveRun();
    const started: string[] = [];
    const track = (runId: string) =>
      gate.batchRun(runId, never).then((end) => {
        started.push(runId);
        return end;
      });
    const first = track("a");
    const second = track("b");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(started).toEqual([]);
    expect(gate.waiting).toBe(2);
    // past the bound: one at a time beside the interactive run, oldest first
    const endFirst = await first;
    expect(started).toEqual(["a"]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(started).toEqual(["a"]);
    endFirst();
    const endSecond = await second;
    expect(started).toEqual(["a", "b"]);
    // a newcomer waits its own bound again while the interactive run goes on
    endSecond();
    const third = track("c");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(started).toEqual(["a", "b"]);
    // and starts at once when the interactive run ends
    endInteractive();
    (await third)();
    expect(started).toEqual(["a", "b", "c"]);
  });
});
