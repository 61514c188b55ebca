import { type RunRequest, type RunStatus, toWireError } from "@agent-runtime/contracts";
import type { RunBudget } from "./budgets.js";
import type { FinishRun, LoopDeps, RunOptions } from "./run-context.js";
import { type RunControl, RunHandedOff } from "./run-control.js";
import { RunNotRecorded } from "./run-finish.js";

/** Codes a call cut short by the clock comes back with. */
const CUT_SHORT = new Set(["timeout", "deadline_exceeded", "cancelled", "upstream", "unavailable"]);

/**
 * How a run that threw ends: cancelled (by its client, or a call abandoned for that reason), handed
 * back to the queue (worker draining; its recorded steps stay), out of time (the agent's time
 * budget is a budget outcome, the run's own deadline a `deadline_exceeded` failure), retried later
 * (a batch run's retryable failure before its last delivery), or failed with the error as it is.
 * Throws to hand the run back; resolves with its final status otherwise.
 */
export async function endAfterError(
  error: unknown,
  run: {
    deps: LoopDeps;
    request: RunRequest;
    options: RunOptions;
    control: RunControl;
    budget: RunBudget;
    finish: FinishRun;
  },
): Promise<RunStatus> {
  const { deps, request, options, control, budget, finish } = run;
  // its end could not be journaled and its client was told: the run goes back to the queue as is
  if (error instanceof RunNotRecorded) throw error;
  const wire = toWireError(error);
  // a call abandoned downstream because the time ran out is a time outcome, not a cancel
  const timeUp = Date.now() >= budget.timeLimit - 10;
  if (control.cancelled || (wire.code === "cancelled" && !timeUp)) {
    return finish("cancelled", undefined, {
      code: "cancelled",
      message: "run was cancelled",
      retryable: false,
    });
  }
  if (error instanceof RunHandedOff || options.signal.aborted) {
    deps.logger.info(
      { runId: request.runId, steps: budget.spent().steps },
      "run handed off (worker draining)",
    );
    throw error instanceof RunHandedOff ? error : new RunHandedOff(request.runId);
  }
  if (timeUp && CUT_SHORT.has(wire.code)) {
    if (budget.timeLimit < request.deadline) {
      return finish("budget_exceeded", undefined, budget.timeUsedUp(wire.message));
    }
    return finish("failed", undefined, {
      code: "deadline_exceeded",
      message: `the run's deadline passed before it finished (${wire.message})`,
      retryable: false,
      details: budget.spent(),
    });
  }
  // batch runs are retried with backoff on retryable failures; interactive runs fail fast
  if (request.priority === "batch" && wire.retryable && !options.finalAttempt) {
    deps.logger.warn(
      { runId: request.runId, error: wire.message, delivery: options.deliveryCount },
      "batch run failed; will retry",
    );
    throw error;
  }
  if (wire.code === "internal") deps.logger.error({ err: error, runId: request.runId }, "run failed");
  return finish(wire.code === "budget_exceeded" ? "budget_exceeded" : "failed", undefined, wire);
}
