import { defineEndpoint, Priority, RuntimeError } from "@agent-runtime/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { interactiveReserve } from "./lanes.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

const Work = defineEndpoint(
  "test.lanes",
  z.object({ meta: z.object({ priority: Priority.optional() }), n: z.number() }),
  z.object({ n: z.number() }),
);

describe("an endpoint with an interactive reserve", () => {
  let bus: Bus;
  let other: Bus;
  beforeEach(async () => {
    bus = await createTestBus();
    other = await createTestBus({ prefix: bus.prefix });
  });
  afterEach(async () => {
    await other.close();
    await cleanupTestBus(bus);
  });

  it("refuses batch requests past their share while interactive ones still get in", async () => {
    const open: Array<() => void> = [];
    bus.serve(
      Work,
      ({ n }) =>
        new Promise((resolve) => {
          open.push(() => resolve({ n }));
        }),
      {
        queue: "lanes",
        maxInFlight: 4,
        admit: interactiveReserve({ maxInFlight: 4, interactiveShare: 0.25, subject: "test.lanes" }),
      },
    );
    await bus.nc.flush();
    const batch = (n: number) => other.request(Work, { meta: { priority: "batch" }, n }, { timeoutMs: 5000 });
    const running = [batch(1), batch(2), batch(3)];
    while (open.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    // the fourth place is interactive's: a batch request is turned away (marked refused, so the
    // requester tried again before giving up) ...
    const refused = await batch(4).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RuntimeError);
    expect(refused).toMatchObject({ code: "overloaded", retryable: true });
    expect((refused as RuntimeError).message).toMatch(/test\.lanes .* 3 batch requests/);
    // ... and a request without a priority (interactive) takes it
    const urgent = other.request(Work, { meta: {}, n: 5 }, { timeoutMs: 5000 });
    while (open.length < 4) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const answer of open.splice(0)) answer();
    await expect(Promise.all([...running, urgent])).resolves.toEqual([
      { n: 1 },
      { n: 2 },
      { n: 3 },
      { n: 5 },
    ]);
    // a finished batch request gave its place back
    const again = batch(6);
    while (open.length < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    open.splice(0)[0]!();
    await expect(again).resolves.toEqual({ n: 6 });
  });
});
