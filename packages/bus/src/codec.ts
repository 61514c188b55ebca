import type { z } from "zod";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeText(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Parses JSON and validates it; throws ZodError or SyntaxError. */
export function decodeWith<T extends z.ZodType>(schema: T, data: Uint8Array): z.infer<T> {
  const text = decodeText(data);
  const raw: unknown = text.length === 0 ? undefined : JSON.parse(text);
  return schema.parse(raw);
}
