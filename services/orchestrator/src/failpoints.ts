/**
 * Crash points for fault tests: a worker started with `FAILPOINTS=after-final-write` (a comma list)
 * SIGKILLs itself at that point of the first run that reaches it, so a test can kill a worker at
 * the worst moment (between two writes) instead of a friendly one. Unset in production.
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

export function failpoints(enabled: readonly string[]): (name: Failpoint) => void {
  const armed = new Set(enabled);
  if (armed.size === 0) return () => undefined;
  return (name) => {
    if (armed.has(name)) process.kill(process.pid, "SIGKILL");
  };
}
