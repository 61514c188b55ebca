import { z } from "zod";
import { refineStorable } from "./storable.js";

/** An event's id rides in a NATS header (`Nats-Msg-Id`), which cannot hold line breaks. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]+$/;

/** CloudEvents 1.0, JSON format (structured mode). */
export const CloudEvent = z
  .object({
    specversion: z.literal("1.0"),
    id: z.string().min(1).max(200).regex(NO_CONTROL_CHARACTERS, "event ids may not hold control characters"),
    source: z.string().min(1).max(500),
    type: z.string().min(1).max(200),
    subject: z.string().max(500).optional(),
    time: z.string().datetime({ offset: true }).optional(),
    datacontenttype: z.string().optional(),
    dataschema: z.string().optional(),
    data: z.unknown().optional(),
    data_base64: z.string().optional(),
  })
  .catchall(z.unknown())
  // events also arrive on NATS directly (`events.>`): what the stores cannot hold is refused there too
  .superRefine(refineStorable);
export type CloudEvent = z.infer<typeof CloudEvent>;

/** A NATS subject token made from a CloudEvents `source` or `type`. */
export function subjectToken(value: string): string {
  const token = value
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/[^A-Za-z0-9_-]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return token.length > 0 ? token.slice(0, 120) : "unknown";
}
