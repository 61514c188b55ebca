import type { AgentConfig } from "@agent-runtime/config";
import type { RunRequest, TokenUsage, WireError } from "@agent-runtime/contracts";
import { addUsage, emptyUsage } from "./run-events.js";
import type { RecordedStep } from "./run-store.js";

/**
 * A run's budgets (steps, cost, time: the tighter of the agent's and the request's, time counted
 * from when the run started and never past its deadline) and what it has spent, recorded steps
 * included.
 */
export class RunBudget {
  readonly usage: TokenUsage = emptyUsage();
  costUsd = 0;
  readonly maxSteps: number;
  readonly costLimitUsd: number;
  /** When the agent's time budget runs out (the run's deadline at the latest). */
  readonly timeLimit: number;

  constructor(
    request: RunRequest,
    agent: AgentConfig,
    private readonly startedAt: number,
    private readonly steps: readonly RecordedStep[],
  ) {
    for (const step of steps) this.spend(step);
    this.maxSteps = Math.min(request.budget?.maxSteps ?? agent.maxSteps, agent.maxSteps);
    this.costLimitUsd = Math.min(request.budget?.costUsd ?? agent.costBudgetUsd, agent.costBudgetUsd);
    this.timeLimit = Math.min(
      request.deadline,
      startedAt + Math.min(request.budget?.timeMs ?? agent.timeBudgetMs, agent.timeBudgetMs),
    );
  }

  /** Adds a call's tokens and cost. */
  spend(spent: { usage: TokenUsage; costUsd: number }): void {
    addUsage(this.usage, spent.usage);
    this.costUsd += spent.costUsd;
  }

  /** Adds a cost without tokens (tool calls). */
  spendUsd(costUsd: number): void {
    this.costUsd += costUsd;
  }

  get remainingUsd(): number {
    return Math.max(0, this.costLimitUsd - this.costUsd);
  }

  get timeBudgetMs(): number {
    return this.timeLimit - this.startedAt;
  }

  /** What the run has spent so far (the details of a budget error). */
  spent(): { spentUsd: number; usage: TokenUsage; steps: number } {
    return { spentUsd: this.costUsd, usage: this.usage, steps: this.steps.length };
  }

  /** Why step `stepIndex` may not start (a `budget_exceeded` error), or undefined when it may. */
  exhausted(stepIndex: number, now = Date.now()): WireError | undefined {
    if (stepIndex >= this.maxSteps) {
      return this.exceeded(`stopped after ${this.maxSteps} steps without a final answer`, {
        budget: "steps",
        limit: this.maxSteps,
      });
    }
    if (this.costUsd >= this.costLimitUsd) {
      return this.exceeded(`spent $${this.costUsd.toFixed(6)} of a $${this.costLimitUsd} budget`, {
        budget: "cost",
        limitUsd: this.costLimitUsd,
      });
    }
    if (now >= this.timeLimit) return this.timeUsedUp();
    return undefined;
  }

  /** The time budget ran out (between steps, or inside a call: `during` says what was cut short). */
  timeUsedUp(during?: string): WireError {
    return this.exceeded(`time budget of ${this.timeBudgetMs} ms used up${during ? ` (${during})` : ""}`, {
      budget: "time",
      limitMs: this.timeBudgetMs,
    });
  }

  private exceeded(message: string, details: Record<string, unknown>): WireError {
    return {
      code: "budget_exceeded",
      message,
      retryable: false,
      details: { ...details, ...this.spent() },
    };
  }
}
