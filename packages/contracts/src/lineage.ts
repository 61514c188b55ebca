/**
 * Delegated runs are named after their parent: `<parent>:child:<step>:<position>`. A run's lineage
 * is its own id and every ancestor's, so a cancel of any of them reaches it.
 */
const CHILD = ":child:";

/** The run itself, then its parent, up to the root run. */
export function runLineage(runId: string): string[] {
  const lineage = [runId];
  for (let at = runId.lastIndexOf(CHILD); at > 0; at = runId.lastIndexOf(CHILD, at - 1)) {
    lineage.push(runId.slice(0, at));
  }
  return lineage;
}

/** Whether `runId` is `ancestor` or was delegated from it, at any depth. */
export function inLineageOf(runId: string, ancestor: string): boolean {
  return runId === ancestor || runId.startsWith(ancestor + CHILD);
}
