import { createHash } from "node:crypto";

export interface EmbeddingOptions {
  dimensions?: number;
  /** Groups of words that mean the same; each maps to the group's first word. Not to be mutated once used. */
  synonyms?: string[][];
}

function stem(word: string): string {
  if (word.length > 5 && word.endsWith("ing")) return word.slice(0, -3);
  if (word.length > 4 && word.endsWith("ed")) return word.slice(0, -2);
  if (word.length > 3 && word.endsWith("s") && !word.endsWith("ss")) return word.slice(0, -1);
  return word;
}

const STOPWORDS = new Set(
  "a an the is are was were be been am i me my you your we our it its of to in on at for and or but with this that what which who how do does did".split(
    " ",
  ),
);

const NO_SYNONYMS = new Map<string, string>();
const synonymMaps = new WeakMap<string[][], Map<string, string>>();

/** Built once per `synonyms` array (the server passes the same one for every text). */
function synonymMap(groups: string[][] | undefined): Map<string, string> {
  if (!groups) return NO_SYNONYMS;
  const cached = synonymMaps.get(groups);
  if (cached) return cached;
  const map = buildSynonymMap(groups);
  synonymMaps.set(groups, map);
  return map;
}

function buildSynonymMap(groups: string[][]): Map<string, string> {
  const map = new Map<string, string>();
  for (const group of groups) {
    const head = group[0];
    if (!head) continue;
    for (const word of group) map.set(stem(word.toLowerCase()), stem(head.toLowerCase()));
  }
  return map;
}

/**
 * A deterministic embedding: words (stemmed, synonyms folded) hashed into
 * `dimensions` signed buckets, L2-normalised. Texts that share words or
 * synonyms are close; unrelated texts are near orthogonal.
 */
export function fakeEmbedding(text: string, options: EmbeddingOptions = {}): number[] {
  const dimensions = options.dimensions ?? 64;
  const synonyms = synonymMap(options.synonyms);
  const vector = new Array<number>(dimensions).fill(0);
  const words = text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  for (const raw of words) {
    if (STOPWORDS.has(raw)) continue;
    const word = synonyms.get(stem(raw)) ?? stem(raw);
    const digest = createHash("sha1").update(word).digest();
    for (let k = 0; k < 2; k++) {
      const bucket = digest.readUInt16BE(k * 2) % dimensions;
      const sign = digest[8 + k]! & 1 ? 1 : -1;
      vector[bucket]! += sign;
    }
  }
  const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
  if (norm === 0) {
    vector[0] = 1;
    return vector;
  }
  return vector.map((value) => value / norm);
}

export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}

/** Rough token count the fake reports when a step gives none. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
