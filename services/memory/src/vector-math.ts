/** Embedding helpers for the stock-PostgreSQL vector search. */

/** float32 little-endian bytes, the `chunks.vector` column. */
export function encodeVector(vector: readonly number[]): Buffer {
  const buffer = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) buffer.writeFloatLE(vector[i]!, i * 4);
  return buffer;
}

export function decodeVector(bytes: Buffer): Float32Array {
  const copy = new Float32Array(bytes.length / 4);
  for (let i = 0; i < copy.length; i++) copy[i] = bytes.readFloatLE(i * 4);
  return copy;
}

export interface Signature {
  /** 2 bits per dimension: "positive" bits, then "negative" bits (a ternary vector). */
  bits: string;
  /** Dimensions that are not ~zero (the squared norm of the ternary vector). */
  nonzero: number;
}

/**
 * Ternary quantisation: each component becomes +1, -1 or 0 (when smaller
 * than half the vector's RMS), stored as two bit strings. The dot product of
 * two such vectors is `bit_count(a & b) - bit_count(a & swap(b))`, which
 * PostgreSQL computes at C speed, so a scan of the narrow signature table
 * ranks candidates for an exact float32 re-rank. Works for dense provider
 * embeddings and for sparse ones alike.
 */
export function signature(vector: readonly number[]): Signature {
  let squares = 0;
  for (const value of vector) squares += value * value;
  const threshold = 0.5 * Math.sqrt(squares / Math.max(1, vector.length));
  let positive = "";
  let negative = "";
  let nonzero = 0;
  for (const value of vector) {
    const up = value > threshold && value > 0;
    const down = value < -threshold && value < 0;
    positive += up ? "1" : "0";
    negative += down ? "1" : "0";
    if (up || down) nonzero++;
  }
  return { bits: positive + negative, nonzero: Math.max(1, nonzero) };
}

/** The query's two masks: matching signs add, opposite signs subtract. */
export function queryMasks(vector: readonly number[]): { same: string; opposite: string } {
  const { bits } = signature(vector);
  const half = bits.length / 2;
  return { same: bits, opposite: bits.slice(half) + bits.slice(0, half) };
}

export function normalize(vector: readonly number[]): number[] {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  return norm === 0 ? [...vector] : vector.map((value) => value / norm);
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}
