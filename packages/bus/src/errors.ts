import { RuntimeError, type WireError } from "@agent-runtime/contracts";
import { errors as natsErrors } from "@nats-io/nats-core";

/** Maps a NATS client failure on request/reply to a typed runtime error. */
export function fromNatsRequestError(error: unknown, subject: string, timeoutMs: number): RuntimeError {
  if (error instanceof RuntimeError) return error;
  if (error instanceof natsErrors.RequestError && error.isNoResponders()) {
    return new RuntimeError("unavailable", `no service is answering on ${subject}`, {
      retryable: true,
      retryAfterMs: 1000,
      cause: error,
    });
  }
  if (
    error instanceof natsErrors.TimeoutError ||
    (error instanceof Error && error.cause instanceof natsErrors.TimeoutError)
  ) {
    return new RuntimeError("timeout", `${subject} did not answer within ${timeoutMs} ms`, { cause: error });
  }
  if (error instanceof natsErrors.RequestError && error.cause instanceof natsErrors.NoRespondersError) {
    return new RuntimeError("unavailable", `no service is answering on ${subject}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new RuntimeError("unavailable", `request on ${subject} failed: ${message}`, { cause: error });
}

export function overloadedError(what: string, limit: number): WireError {
  return {
    code: "overloaded",
    message: `${what} is at its limit of ${limit} requests in flight`,
    retryable: true,
    retryAfterMs: 1000,
  };
}
