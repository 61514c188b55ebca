import type { WireError } from "@agent-runtime/contracts";

export function overloadedError(what: string, limit: number): WireError {
  return {
    code: "overloaded",
    message: `${what} is at its limit of ${limit} requests in flight`,
    retryable: true,
    retryAfterMs: 1000,
  };
}
