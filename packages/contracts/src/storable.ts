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

/** Where a value cannot be stored: the path as segments, and why. */
interface Unstorable {
  segments: (string | number)[];
  message: string;
}

function locateUnstorable(value: unknown, maxDepth: number): Unstorable | undefined {
  const path: (string | number)[] = [];
  const found = (message: string): Unstorable => ({ segments: [...path], message });
  const visit = (node: unknown, depth: number): Unstorable | undefined => {
    if (typeof node === "string") {
      const reason = unstorableReason(node);
      return reason ? found(reason) : undefined;
    }
    if (node === null || typeof node !== "object") return undefined;
    if (depth >= maxDepth) return found(`nested more than ${maxDepth} levels deep`);
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length; index++) {
        path.push(index);
        const inner = visit(node[index], depth + 1);
        path.pop();
        if (inner) return inner;
      }
      return undefined;
    }
    for (const [key, child] of Object.entries(node)) {
      const keyReason = unstorableReason(key);
      path.push(keyReason ? key.replace(SUSPECT_ALL, "\ufffd") : key);
      const inner = keyReason ? found(`field name ${keyReason}`) : visit(child, depth + 1);
      path.pop();
      if (inner) return inner;
    }
    return undefined;
  };
  return visit(value, 0);
}

/**
 * The first place in a parsed JSON value that cannot be stored or is nested too
 * deeply: a string value, or an object key, with NUL or a lone surrogate. Its path
 * is formatted like a zod issue's (`messages[0].content`). Objects and arrays
 * count as one level each; `maxDepth` bounds the walk itself too.
 */
export function findUnstorable(value: unknown, options: { maxDepth?: number } = {}): FieldIssue | undefined {
  const found = locateUnstorable(value, options.maxDepth ?? MAX_JSON_DEPTH);
  return found ? { path: formatPath(found.segments), message: found.message } : undefined;
}

/**
 * A zod refinement for messages that come from outside (e.g. CloudEvents published
 * on NATS directly): any string the stores cannot hold, or nesting past the limit,
 * is an issue at its path, so a bad message is refused where it enters.
 */
export function refineStorable(value: unknown, context: z.RefinementCtx): void {
  const found = locateUnstorable(value, MAX_JSON_DEPTH);
  if (found) context.addIssue({ code: "custom", path: found.segments, message: found.message });
}
