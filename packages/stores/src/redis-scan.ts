import type { Redis } from "ioredis";

/** `text` with Redis glob characters escaped, for a literal part of a SCAN pattern. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\^]/g, (character) => `\\${character}`);
}

/**
 * Deletes the keys matching `pattern` (a SCAN glob) that `select` picks, walking the key space
 * incrementally (SCAN, never KEYS) and deleting in batches (UNLINK). Returns how many went.
 * Errors are thrown: a caller forgetting data must not report success over a Redis outage.
 */
export async function deleteScanned(
  redis: Redis,
  pattern: string,
  select: (key: string) => boolean,
  options: { count?: number } = {},
): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", options.count ?? 1000);
    cursor = next;
    const chosen = keys.filter(select);
    if (chosen.length > 0) deleted += await redis.unlink(...chosen);
  } while (cursor !== "0");
  return deleted;
}
