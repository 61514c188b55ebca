import { describe, expect, it } from "vitest";
import { boundedLabel, OTHER_LABEL } from "./bounded-label.js";

describe("boundedLabel", () => {
  it("keeps the first N values and counts the rest as other", () => {
    const tenant = boundedLabel(2);
    expect(["a", "b", "c", "a", "d", "b"].map(tenant)).toEqual([
      "a",
      "b",
      OTHER_LABEL,
      "a",
      OTHER_LABEL,
      "b",
    ]);
  });

  it("never gives a slot to a value named other", () => {
    const tenant = boundedLabel(2);
    expect([OTHER_LABEL, "a", "b"].map(tenant)).toEqual([OTHER_LABEL, "a", "b"]);
  });

  it("refuses a limit that is not a whole number", () => {
    expect(() => boundedLabel(-1)).toThrow(RangeError);
    expect(() => boundedLabel(1.5)).toThrow(RangeError);
  });
});
