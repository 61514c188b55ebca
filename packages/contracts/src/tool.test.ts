import { describe, expect, it } from "vitest";
import { parseToolArguments } from "./tool.js";

describe("parseToolArguments", () => {
  it("parses the model's JSON text", () => {
    expect(parseToolArguments('{"expression":"2+2"}')).toEqual({ ok: true, value: { expression: "2+2" } });
    expect(parseToolArguments("[1,2]")).toEqual({ ok: true, value: [1, 2] });
  });

  it("reads blank text as no arguments", () => {
    expect(parseToolArguments("")).toEqual({ ok: true, value: {} });
    expect(parseToolArguments("  \n")).toEqual({ ok: true, value: {} });
  });

  it("takes an already parsed value as it is", () => {
    const value = { city: "Oslo" };
    expect(parseToolArguments(value)).toEqual({ ok: true, value });
  });

  it("says so when the text is not JSON", () => {
    expect(parseToolArguments('{"expression":')).toEqual({ ok: false, reason: "not valid JSON" });
    expect(parseToolArguments("expression=2")).toEqual({ ok: false, reason: "not valid JSON" });
  });
});
