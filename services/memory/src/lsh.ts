/**
 * Random-hyperplane LSH: an embedding's bucket is the sign pattern of its
 * projections on 8 fixed hyperplanes. Similar vectors share a bucket or sit
 * one bit apart, so a search reads 9 of 256 buckets instead of every chunk
 * (stock PostgreSQL has no vector index; with pgvector use HNSW instead).
 */
const PLANES = 8;
const cache = new Map<number, Float64Array[]>();

function planes(dimensions: number): Float64Array[] {
  let found = cache.get(dimensions);
  if (found) return found;
  let state = 0x9e3779b9 ^ dimensions;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  found = Array.from({ length: PLANES }, () => {
    const plane = new Float64Array(dimensions);
    for (let i = 0; i < dimensions; i++) {
      // Box-Muller: gaussian components give uniformly random directions
      plane[i] = Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
    }
    return plane;
  });
  cache.set(dimensions, found);
  return found;
}

export function lshBucket(vector: readonly number[]): number {
  let bucket = 0;
  planes(vector.length).forEach((plane, bit) => {
    let dot = 0;
    for (let i = 0; i < vector.length; i++) dot += vector[i]! * plane[i]!;
    if (dot >= 0) bucket |= 1 << bit;
  });
  return bucket;
}

/** The bucket and its neighbours one bit away. */
export function nearbyBuckets(bucket: number): number[] {
  return [bucket, ...Array.from({ length: PLANES }, (_, bit) => bucket ^ (1 << bit))];
}
