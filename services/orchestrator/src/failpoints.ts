/**
 * The orchestrator's crash points for fault tests (`FAILPOINTS`, see `failpoints` in
 * @agent-runtime/service): each SIGKILLs the worker at that point of the first run reaching it.
 */
export const FAILPOINT_NAMES = [
  /** A tool step's calls have acted; the step is not yet journaled. */
  "after-step-effects",
  /** A run's end (final step and status) is journaled; nobody has heard it yet, the run is not acked. */
  "after-final-write",
  /** A run is over and announced, its journal writes committed; the flush that lets its message be acked is next. */
  "before-journal-flush",
] as const;
export type Failpoint = (typeof FAILPOINT_NAMES)[number];
