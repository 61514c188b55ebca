import { describe, expect, it } from "vitest";
import { chunkText } from "./chunking.js";
import { countText } from "./tokens.js";

describe("chunkText", () => {
  it("splits on sentences and keeps every chunk near the token target", () => {
    const text = Array.from(
      { length: 200 },
      (_, n) => `Sentence number ${n} talks about topic ${n % 7}.`,
    ).join(" ");
    const chunks = chunkText(text, 50);
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) expect(countText(chunk)).toBeLessThanOrEqual(55);
    expect(chunks.join(" ")).toBe(text);
  });

  it("cuts text without punctuation on words, and a giant word by characters", () => {
    const words = Array.from({ length: 3000 }, (_, n) => `w${n}`).join(" ");
    for (const chunk of chunkText(words, 100)) expect(countText(chunk)).toBeLessThanOrEqual(110);
    const blob = "QUJD".repeat(5000);
    const pieces = chunkText(blob, 100);
    expect(pieces.join("")).toBe(blob);
    for (const piece of pieces) expect(countText(piece)).toBeLessThanOrEqual(150);
  });
});
