/** The label value that stands for every value past a bound. */
export const OTHER_LABEL = "other";

/** Named tenants (or other label values) a bounded label keeps by default. */
export const DEFAULT_LABEL_LIMIT = 20;

/**
 * Bounded cardinality for a label such as `tenant`: the first `limit` distinct values seen keep
 * their own series, every later one is counted under `other`. A value keeps the slot it got, so
 * counters stay monotonic per series (a ranking that changed its top N would make them jump).
 */
export function boundedLabel(limit: number = DEFAULT_LABEL_LIMIT): (value: string) => string {
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError(`label limit must be a whole number, got ${limit}`);
  const named = new Set<string>();
  return (value) => {
    if (named.has(value)) return value;
    if (named.size < limit && value !== OTHER_LABEL) {
      named.add(value);
      return value;
    }
    return OTHER_LABEL;
  };
}
