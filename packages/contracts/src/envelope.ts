import { z } from "zod";
import { WireError } from "./errors.js";

/** Every NATS reply is either data or an error, never a bare payload. */
export function replyEnvelope<T extends z.ZodType>(data: T) {
  return z.discriminatedUnion("ok", [
    z.object({ ok: z.literal(true), data }),
    z.object({ ok: z.literal(false), error: WireError }),
  ]);
}

export const ErrorEnvelope = z.object({ ok: z.literal(false), error: WireError });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;

/** A message that could not be processed, on `dlq.<origin>`. */
export const DeadLetter = z.object({
  origin: z.string(),
  subject: z.string(),
  stream: z.string().optional(),
  consumer: z.string().optional(),
  reason: z.string(),
  deliveries: z.number().int().nonnegative(),
  payload: z.string(),
  ts: z.number(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;
