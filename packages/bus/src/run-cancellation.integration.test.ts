import { Subjects } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { RunCancellation } from "./run-cancellation.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

describe("run cancellation", () => {
  it("follows the cancel notices on the bus", async () => {
    const bus = await createTestBus();
    try {
      const cancellation = new RunCancellation();
      const work = new AbortController();
      cancellation.register("run-7:child:1", work);
      const heard: Array<[string, number]> = [];
      let heardRun7!: () => void;
      const cancelled = new Promise<void>((resolve) => {
        heardRun7 = resolve;
      });
      const subscription = cancellation.listen(bus, (runId, aborted) => {
        heard.push([runId, aborted]);
        if (runId === "run-7") heardRun7();
      });
      await bus.nc.flush();
      bus.publish(Subjects.runCancelled("run-8"), z.unknown(), {});
      bus.publish(Subjects.runCancelled("run-7"), z.unknown(), {});
      await cancelled;
      subscription.unsubscribe();
      expect(heard).toEqual([
        ["run-8", 0],
        ["run-7", 1],
      ]);
      expect(work.signal.aborted).toBe(true);
    } finally {
      await cleanupTestBus(bus);
    }
  });
});
