import type { CacheSchema } from "../json-cache.js";

/** A cached value of the JSON cache tests. */
export interface Answer {
  text: string;
  n: number;
}
export const AnswerSchema: CacheSchema<Answer> = {
  safeParse(value) {
    const candidate = value as Partial<Answer> | null;
    return typeof candidate?.text === "string" && typeof candidate.n === "number"
      ? { success: true, data: { text: candidate.text, n: candidate.n } }
      : { success: false };
  },
};
