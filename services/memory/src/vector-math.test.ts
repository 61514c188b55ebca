import { describe, expect, it } from "vitest";
import { cosine, decodeVector, encodeVector, queryMasks, signature } from "./vector-math.js";

const popcount = (bits: string, mask: string) => {
  let count = 0;
  for (let i = 0; i < bits.length; i++) if (bits[i] === "1" && mask[i] === "1") count++;
  return count;
};

function gaussian(seed: number, dimensions: number): number[] {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return (state + 1) / 2147483649;
  };
  return Array.from(
    { length: dimensions },
    () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()),
  );
}

describe("vector math", () => {
  it("round-trips float32 vectors through bytes", () => {
    const vector = [0.5, -0.25, 1e-3, 0];
    expect([...decodeVector(encodeVector(vector))]).toEqual(vector.map((value) => Math.fround(value)));
  });

  it("computes the ternary dot product the SQL scan uses", () => {
    const a = [0.9, -0.8, 0.01, 0, 0.7, -0.02];
    const b = [0.5, 0.6, -0.9, 0.3, 0.8, -0.7];
    const ta = signature(a);
    const masks = queryMasks(b);
    const ternary = (vector: number[]): number[] => {
      const { bits } = signature(vector);
      const half = bits.length / 2;
      return vector.map((_, i) => (bits[i] === "1" ? 1 : bits[half + i] === "1" ? -1 : 0));
    };
    const expected = ternary(a).reduce((sum, value, i) => sum + value * ternary(b)[i]!, 0);
    expect(popcount(ta.bits, masks.same) - popcount(ta.bits, masks.opposite)).toBe(expected);
    expect(ta.nonzero).toBe(ternary(a).filter((value) => value !== 0).length);
  });

  it("ranks the true nearest neighbours of dense vectors among its top candidates", () => {
    const dimensions = 256;
    const corpus = Array.from({ length: 2000 }, (_, n) => gaussian(n + 1, dimensions));
    let found = 0;
    for (let q = 0; q < 20; q++) {
      // a query near document q*50: that document plus noise
      const base = corpus[q * 50]!;
      const noise = gaussian(10_000 + q, dimensions);
      const query = base.map((value, i) => value + 0.8 * noise[i]!);
      const masks = queryMasks(query);
      const ranked = corpus
        .map((vector, n) => {
          const { bits, nonzero } = signature(vector);
          return {
            n,
            score: (popcount(bits, masks.same) - popcount(bits, masks.opposite)) / Math.sqrt(nonzero),
          };
        })
        .sort((x, y) => y.score - x.score)
        .slice(0, 100);
      const exact = corpus
        .map((vector, n) => ({ n, similarity: cosine(query, vector) }))
        .sort((x, y) => y.similarity - x.similarity)[0]!.n;
      if (ranked.some((entry) => entry.n === exact)) found++;
    }
    expect(found).toBe(20);
  });
});
