import { z } from "zod";
import { type FieldIssue, formatPath } from "./errors.js";

/**
 * Input the stores cannot hold, refused where it enters (DESIGN rule 2): Postgres
 * `text` and `jsonb` refuse NUL (U+0000), and a lone UTF-16 surrogate is not
 * Unicode at all (`jsonb` refuses its `\ud800` escape; UTF-8 turns it into U+FFFD,
 * so it would not even come back as sent).
 */

/** Nesting deeper than this is refused at the door (JSON bodies, NATS messages). */
export const MAX_JSON_DEPTH = 64;

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what is looked for
const SUSPECT = /[\u0000\ud800-\udfff]/;
const SUSPECT_ALL = new RegExp(SUSPECT.source, "g");
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a string cannot be stored, or undefined when it can. */
export function unstorableReason(value: string): string | undefined {
  if (!SUSPECT.test(value)) return undefined;
  if (value.includes("\u0000")) return "contains a NUL character (\\u0000), which cannot be stored";
  if (LONE_SURROGATE.test(value))
    return "contains a lone UTF-16 surrogate (not valid Unicode), which cannot be stored";
  return undefined;
}

/** A string the stores can hold: no NUL, no lone surrogate. */
export const StorableString = z.string().superRefine((value, context) => {
  const reason = unstorableReason(value);
  if (reason) context.addIssue({ code: "custom", message: reason });
});

/**
 * The first place in a parsed JSON value that cannot be stored or is nested too
 * deeply: a string value, or an object key, with NUL or a lone surrogate. Its path
 * is formatted like a zod issue's (`messages[0].content`). Objects and arrays
 * count as one level each; `maxDepth` bounds the walk itself too.
 */
export function findUnstorable(value: unknown, options: { maxDepth?: number } = {}): FieldIssue | undefined {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const path: (string | number)[] = [];
  const visit = (node: unknown, depth: number): FieldIssue | undefined => {
    if (typeof node === "string") {
      const reason = unstorableReason(node);
      return reason ? { path: formatPath(path), message: reason } : undefined;
    }
    if (node === null || typeof node !== "object") return undefined;
    if (depth >= maxDepth)
      return { path: formatPath(path), message: `nested more than ${maxDepth} levels deep` };
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length; index++) {
        path.push(index);
        const found = visit(node[index], depth + 1);
        path.pop();
        if (found) return found;
      }
      return undefined;
    }
    for (const [key, child] of Object.entries(node)) {
      const keyReason = unstorableReason(key);
      path.push(keyReason ? key.replace(SUSPECT_ALL, "\ufffd") : key);
      const found = keyReason
        ? { path: formatPath(path), message: `field name ${keyReason}` }
        : visit(child, depth + 1);
      path.pop();
      if (found) return found;
    }
    return undefined;
  };
  return visit(value, 0);
}
