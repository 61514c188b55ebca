import { createHash } from "node:crypto";

/** Deterministic 64-dimension bag-of-words embedding for the offline dev model. */
export function fakeEmbeddingForOffline(text: string, dimensions = 64): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    const digest = createHash("sha1").update(word).digest();
    vector[digest.readUInt16BE(0) % dimensions]! += digest[2]! & 1 ? 1 : -1;
  }
  const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0)) || 1;
  return vector.map((value) => value / norm);
}
