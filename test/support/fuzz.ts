/**
 * Hostile input for the fuzz suites: a fixed corpus of strings and bodies known to
 * break things, and fast-check arbitraries that mix them into well-formed shapes.
 */
import fc from "fast-check";

/** Strings worth trying in every string field. */
export const NASTY_STRINGS: readonly string[] = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "x\ud83d",
  "\ude00y",
  "😀",
  "\ud83d\ude00",
  "\u202eevil",
  "\u200b",
  "\ufeff",
  "\r\nX-Injected: 1",
  "' OR 1=1 --",
  "'; DROP TABLE runs; --",
  'Robert"); DROP TABLE students;--',
  "$(rm -rf /)",
  "`id`",
  "{{7*7}}",
  "${jndi:ldap://x/a}",
  "<script>alert(1)</script>",
  "../../../../etc/passwd",
  "%2e%2e%2f%2e%2e%2f",
  "runs.interactive.>",
  "events.*.>",
  "run.*.events",
  "a b.c*>",
  "__proto__",
  "constructor",
  "prototype",
  "NaN",
  "-1e309",
  "9".repeat(400),
  "x".repeat(10_000),
  JSON.stringify({ nested: "json" }),
];

/** Whole bodies worth sending to every route that takes one. */
export const NASTY_BODIES: readonly (string | Uint8Array)[] = [
  "",
  "null",
  "[]",
  "{}",
  "42",
  "-0",
  "1e309",
  "true",
  '"str"',
  "{",
  "}{",
  "[1,]",
  '{"a":1,}',
  "{'a':1}",
  '{"a":undefined}',
  '{"a":NaN}',
  "\uFEFF{}",
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"a":"\\ud800"}',
  '{"a":"\\u0000"}',
  '{"\\u0000":1}',
  '{"a":"\\x41"}',
  `{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}`,
  `${'{"a":'.repeat(500)}1${"}".repeat(500)}`,
  `{"a":"${"x".repeat(300 * 1024)}"}`,
  `[${Array.from({ length: 20_000 }, () => "{}").join(",")}]`,
  new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0x7b]),
  new Uint8Array([0xc3, 0x28, 0x7b, 0x7d]),
  new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
];

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));

/** Any string, often with a NUL or a lone surrogate spliced in, sometimes from the corpus. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.string({ maxLength: 20 }),
        fc.oneof(fc.constant("\u0000"), loneSurrogate),
        fc.string({ maxLength: 20 }),
      )
      .map(([before, bad, after]) => `${before}${bad}${after}`),
  },
);

/** Any JSON value, its strings and keys nasty. */
export const nastyJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    nastyString,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(nastyString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** A field's value: mostly right, sometimes anything at all. */
export const maybe = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: nastyJson });

const contentPart = fc.oneof(
  fc.record({ type: fc.constant("text"), text: nastyString }),
  fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: nastyString }) }),
);
const message = fc.record(
  {
    role: maybe(fc.constantFrom("system", "developer", "user", "assistant", "tool")),
    content: maybe(fc.oneof(nastyString, fc.array(contentPart, { maxLength: 3 }))),
    name: nastyString,
    tool_call_id: nastyString,
  },
  { requiredKeys: ["role", "content"] },
);
const metadata = fc.dictionary(nastyString, maybe(nastyString), { maxKeys: 3 });
const unknownFields = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 12 }).filter((key) => !["__proto__", "constructor"].includes(key)),
  nastyJson,
  { maxKeys: 2 },
);

/** `POST /v1/chat/completions` bodies: the right shape, hostile values, unknown fields, with and without `stream`. */
export const chatBody = fc
  .tuple(
    fc.record(
      {
        model: maybe(fc.constant("assistant")),
        messages: maybe(fc.array(message, { minLength: 1, maxLength: 3 })),
        stream: maybe(fc.boolean()),
        user: maybe(nastyString),
        metadata: maybe(metadata),
        temperature: maybe(fc.double({ min: 0, max: 2, noNaN: true })),
        max_tokens: maybe(fc.integer({ min: 1, max: 50 })),
        tools: maybe(
          fc.array(
            fc.record({
              type: fc.constant("function"),
              function: fc.record({ name: nastyString, description: nastyString }),
            }),
            { maxLength: 2 },
          ),
        ),
        stop: maybe(fc.oneof(nastyString, fc.array(nastyString, { maxLength: 2 }))),
      },
      { requiredKeys: ["messages"] },
    ),
    unknownFields,
  )
  .map(([body, extra]) => ({ ...extra, ...body }));

/** `POST /v1/runs` bodies. */
export const runBody = fc
  .tuple(
    fc.record(
      {
        agent: maybe(fc.constant("assistant")),
        input: maybe(fc.oneof(nastyString, fc.array(message, { minLength: 1, maxLength: 2 }))),
        thread_id: maybe(nastyString),
        user: maybe(nastyString),
        priority: maybe(fc.constantFrom("interactive", "batch")),
        stream: maybe(fc.boolean()),
        metadata: maybe(metadata),
      },
      { requiredKeys: ["input"] },
    ),
    unknownFields,
  )
  .map(([body, extra]) => ({ ...extra, ...body }));

const cloudEvent = fc.record(
  {
    specversion: maybe(fc.constant("1.0")),
    id: maybe(nastyString),
    source: maybe(nastyString),
    type: maybe(nastyString),
    subject: maybe(nastyString),
    time: maybe(fc.constantFrom("2024-01-01T00:00:00Z", "yesterday")),
    data: nastyJson,
  },
  { requiredKeys: ["specversion", "id", "source", "type"] },
);

/** `POST /v1/events` bodies: one event or a batch. */
export const eventsBody = fc.oneof(cloudEvent, fc.array(cloudEvent, { minLength: 1, maxLength: 3 }));

/** Percent-encodes a string for a URL; a lone surrogate becomes the malformed bytes it would be. */
export function encodePathSegment(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return value.replace(/[\ud800-\udfff]/g, "%ED%A0%80").replace(/[^%A-Za-z0-9]/g, (char) => {
      try {
        return encodeURIComponent(char);
      } catch {
        return "%ED%A0%80";
      }
    });
  }
}
