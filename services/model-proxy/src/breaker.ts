export type BreakerState = "closed" | "open" | "half-open";

/**
 * A circuit breaker per provider: after `failures` consecutive failures it
 * opens (calls are skipped at once); after `cooldownMs` one probe is let
 * through; a success closes it, a failure opens it again.
 */
export class CircuitBreaker {
  private consecutiveFailures = 0;
  private openedAt = 0;
  private probing = false;
  private stateValue: BreakerState = "closed";

  constructor(
    readonly name: string,
    private readonly options: { failures: number; cooldownMs: number },
    private readonly onChange: (name: string, state: BreakerState) => void = () => undefined,
  ) {}

  get state(): BreakerState {
    if (this.stateValue === "open" && Date.now() - this.openedAt >= this.options.cooldownMs)
      return "half-open";
    return this.stateValue;
  }

  /** Whether a call may go to this provider now (takes the probe slot when half-open). */
  tryPass(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open") return false;
    if (this.probing) return false;
    this.probing = true;
    this.set("half-open");
    return true;
  }

  /** Milliseconds until a probe may pass. */
  retryInMs(): number {
    return Math.max(0, this.options.cooldownMs - (Date.now() - this.openedAt));
  }

  success(): void {
    this.consecutiveFailures = 0;
    this.probing = false;
    if (this.stateValue !== "closed") this.set("closed");
  }

  /**
   * The call was not made for a reason that says nothing about the provider
   * (our own rate or concurrency limit): give the probe slot back without
   * changing the state.
   */
  release(): void {
    this.probing = false;
  }

  failure(): void {
    this.consecutiveFailures++;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe || this.consecutiveFailures >= this.options.failures) {
      this.openedAt = Date.now();
      this.set("open");
    }
  }

  private set(state: BreakerState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.onChange(this.name, state);
  }
}
