/**
 * The tool executor's crash points for fault tests (`FAILPOINTS`, see `failpoints` in
 * @agent-runtime/service): each SIGKILLs the executor at that point of the first call reaching it.
 */
export const FAILPOINT_NAMES = [
  /** A side-effecting call's idempotency key is claimed; the act is next. */
  "after-claim",
] as const;
export type Failpoint = (typeof FAILPOINT_NAMES)[number];
