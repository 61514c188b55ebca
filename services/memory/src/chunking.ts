import { countText } from "./tokens.js";

/** Splits one over-long sentence on word boundaries (and an over-long word by characters). */
function splitLong(sentence: string, chunkTokens: number): string[] {
  const pieces: string[] = [];
  let current: string[] = [];
  let tokens = 0;
  for (const word of sentence.split(/\s+/).filter(Boolean)) {
    const size = countText(word);
    if (size > chunkTokens) {
      // a "word" longer than a chunk (base64, minified code): cut by characters
      if (current.length > 0) pieces.push(current.join(" "));
      current = [];
      tokens = 0;
      const step = Math.max(1, Math.floor((word.length * chunkTokens) / size));
      for (let start = 0; start < word.length; start += step) pieces.push(word.slice(start, start + step));
      continue;
    }
    if (tokens + size > chunkTokens && current.length > 0) {
      pieces.push(current.join(" "));
      current = [];
      tokens = 0;
    }
    current.push(word);
    tokens += size;
  }
  if (current.length > 0) pieces.push(current.join(" "));
  return pieces;
}

/** A cheap stable hash of a sentence (FNV-1a), for content-defined chunk boundaries. */
function fnv(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * Splits text into chunks of at most about `chunkTokens` tokens, on paragraph
 * and sentence boundaries where it can, on words where a sentence is longer
 * than a chunk. Once a chunk holds half its target it may end at a paragraph
 * break or at a sentence picked by its content (not its position), so an edit
 * early in a document leaves the later chunks, and their embeddings, as they were.
 */
export function chunkText(text: string, chunkTokens: number): string[] {
  const units: { text: string; tokens: number; paragraphEnd: boolean }[] = [];
  for (const paragraph of text.replace(/\r/g, "").split(/\n{2,}/)) {
    const sentences = paragraph
      .split(/(?<=[.!?])\s+/)
      .map((part) => part.trim())
      .filter(Boolean);
    sentences.forEach((sentence, index) => {
      const tokens = countText(sentence);
      const last = index === sentences.length - 1;
      if (tokens <= chunkTokens) units.push({ text: sentence, tokens, paragraphEnd: last });
      else
        splitLong(sentence, chunkTokens).forEach((piece, pieceIndex, pieces) => {
          units.push({
            text: piece,
            tokens: countText(piece),
            paragraphEnd: last && pieceIndex === pieces.length - 1,
          });
        });
    });
  }
  const chunks: string[] = [];
  let current = "";
  let tokens = 0;
  let previousParagraphEnd = false;
  for (const [index, unit] of units.entries()) {
    if (tokens > 0 && tokens + unit.tokens > chunkTokens) {
      chunks.push(current);
      current = "";
      tokens = 0;
    }
    current += current ? (previousParagraphEnd ? "\n\n" : " ") + unit.text : unit.text;
    tokens += unit.tokens;
    previousParagraphEnd = unit.paragraphEnd;
    const boundary = unit.paragraphEnd || fnv(unit.text) % 4 === 0;
    if (tokens >= chunkTokens / 2 && boundary && index < units.length - 1) {
      chunks.push(current);
      current = "";
      tokens = 0;
    }
  }
  if (current) chunks.push(current);
  return chunks;
}
