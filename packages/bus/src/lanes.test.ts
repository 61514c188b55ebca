import { describe, expect, it } from "vitest";
import { reservedSlots } from "./lanes.js";

describe("reservedSlots", () => {
  it("keeps at least one slot for interactive work and never all of them", () => {
    expect(reservedSlots(256, 0.25)).toBe(64);
    expect(reservedSlots(4, 0.25)).toBe(1);
    expect(reservedSlots(2, 0.25)).toBe(1);
    expect(reservedSlots(3, 0.9)).toBe(2);
    expect(reservedSlots(10, 1)).toBe(9);
    // nothing to reserve
    expect(reservedSlots(1, 0.5)).toBe(0);
    expect(reservedSlots(64, 0)).toBe(0);
  });
});
