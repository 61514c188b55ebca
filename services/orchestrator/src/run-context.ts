import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import type { AssistantMessage, RunRequest, RunStatus, ToolSpec, WireError } from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";
import type { Failpoint } from "./failpoints.js";
import type { Journal, JournalEntry } from "./journal.js";
import type { CancelWatch } from "./run-control.js";
import type { RunStore } from "./run-store.js";

export interface AgentTools {
  specs: ToolSpec[];
  /** Whether any of them has side effects (the model's answers are then never cached). */
  sideEffects: boolean;
}

/** What every part of the run loop works with (one per worker). */
export interface LoopDeps {
  bus: Bus;
  store: RunStore;
  /** Where each fact of a run is written (batched across runs). */
  journal: Journal;
  /** Cancel notices of the runs this worker holds. */
  cancels: CancelWatch;
  /** Fault tests: crashes the worker at a named point (a no-op unless armed). */
  failpoint: (name: Failpoint) => void;
  logger: Logger;
  agents: Record<string, AgentConfig>;
  toolSpecs: (agent: string, names: string[], tenant: string, channel?: string) => Promise<AgentTools>;
  /** How long a draining worker lets a step in flight finish before it hands the run off. */
  drainGraceMs: number;
  /** Runs a child run inline (delegation): the loop itself, passed in so no module imports it back. */
  runChild: (request: RunRequest, options: RunOptions) => Promise<RunStatus>;
}

export interface RunOptions {
  /** Aborts when the worker drains: the run stops at its next step and is handed to another worker. */
  signal: AbortSignal;
  deliveryCount: number;
  finalAttempt: boolean;
}

/** Ends a run: its final write (with the final step, if any) and its announcement. */
export type FinishRun = (
  status: RunStatus,
  output: AssistantMessage | undefined,
  error: WireError | undefined,
  finishReason?: string,
  /** Writes that must land before the client hears the run is over (they run alongside the final write). */
  persisted?: Promise<unknown>,
  /** The final step, written in the same entry as the finished state. */
  finalStep?: JournalEntry["step"],
) => Promise<RunStatus>;
