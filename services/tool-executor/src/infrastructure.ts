import { RuntimeError } from "@agent-runtime/contracts";

/**
 * The runtime around a tool failed, not the tool: the executor's own store, or a runtime service a
 * built-in relies on, briefly unavailable. Never shown to the model as the tool's result (its text
 * is not an answer): the call is answered with a retryable `unavailable` error, which the caller
 * retries within its deadline (a side effect stays single under its idempotency key).
 */
export class ToolInfrastructureError extends RuntimeError {
  constructor(message: string, cause?: unknown) {
    super("unavailable", message, { retryable: true, retryAfterMs: 500, cause });
  }
}

/** Codes a runtime service answers when it, not the request, is at fault for now. */
const TRANSIENT_SERVICE_CODES: ReadonlySet<RuntimeError["code"]> = new Set([
  "unavailable",
  "overloaded",
  "rate_limited",
  "internal",
]);

/**
 * What escapes the executor's own machinery (stores, limits) as the wire error its caller gets:
 * our errors as they are, anything else (a Postgres error) as a retryable `unavailable` whose
 * message names no internals.
 */
export function infrastructureFailure(error: unknown, tool: string): RuntimeError {
  if (error instanceof RuntimeError) return error;
  return new ToolInfrastructureError(`the tool executor could not run ${tool} just now; try again`, error);
}

/** For built-ins that call runtime services: a transient failure of the service is infrastructure. */
export function asInfrastructure(error: unknown, what: string): unknown {
  if (error instanceof RuntimeError && TRANSIENT_SERVICE_CODES.has(error.code))
    return new ToolInfrastructureError(`${what} is unavailable just now; try again`, error);
  return error;
}
