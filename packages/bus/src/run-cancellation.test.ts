import { RuntimeError } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { RunCancellation } from "./run-cancellation.js";

describe("run cancellation", () => {
  it("aborts the work of a run and of the runs delegated from it, not of others", () => {
    const cancellation = new RunCancellation();
    const parent = new AbortController();
    const child = new AbortController();
    const other = new AbortController();
    cancellation.register("run-1", parent);
    cancellation.register("run-1:child:2", child);
    cancellation.register("run-10", other);
    expect(cancellation.cancel("run-1")).toBe(2);
    expect(parent.signal.reason).toBeInstanceOf(RuntimeError);
    expect((parent.signal.reason as RuntimeError).code).toBe("cancelled");
    expect(child.signal.aborted).toBe(true);
    expect(other.signal.aborted).toBe(false);
  });

  it("forgets work once it is done", () => {
    const cancellation = new RunCancellation();
    const first = new AbortController();
    const second = new AbortController();
    const doneFirst = cancellation.register("run-1", first);
    const doneSecond = cancellation.register("run-1", second);
    doneFirst();
    expect(cancellation.runCount).toBe(1);
    expect(cancellation.cancel("run-1")).toBe(1);
    expect(first.signal.aborted).toBe(false);
    doneSecond();
    doneSecond();
    expect(cancellation.runCount).toBe(0);
    expect(cancellation.cancel("run-1")).toBe(0);
  });

  it("a late done of finished work leaves the run's newer work registered", () => {
    const cancellation = new RunCancellation();
    const done = cancellation.register("run-1", new AbortController());
    done();
    const later = new AbortController();
    cancellation.register("run-1", later);
    done();
    expect(cancellation.cancel("run-1")).toBe(1);
    expect(later.signal.aborted).toBe(true);
  });
});
