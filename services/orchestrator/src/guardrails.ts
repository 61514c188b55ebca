import type { GuardrailsConfig } from "@agent-runtime/config";
import { type ChatMessage, RuntimeError, textOf } from "@agent-runtime/contracts";
import { z } from "zod";

const PII: Record<GuardrailsConfig["redactPii"][number], RegExp> = {
  email: /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g,
  phone: /(?<!\d)(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?!\d)/g,
  credit_card: /(?<!\d)(?:\d[ -]?){13,19}(?!\d)/g,
  ssn: /(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)/g,
  ip: /(?<!\d)(?:\d{1,3}\.){3}\d{1,3}(?!\d)/g,
};

/** Input checks before the model sees anything: size, deny patterns, PII redaction. */
export function checkInput(messages: readonly ChatMessage[], rules: GuardrailsConfig): ChatMessage[] {
  const size = messages.reduce((sum, message) => sum + textOf(message.content ?? "").length, 0);
  if (size > rules.maxInputChars) {
    throw new RuntimeError(
      "guardrail_blocked",
      `input is ${size} characters; this agent accepts at most ${rules.maxInputChars}`,
      {
        details: { rule: "max_input_chars" },
      },
    );
  }
  for (const pattern of rules.denyPatterns) {
    const regex = new RegExp(pattern, "i");
    for (const message of messages) {
      // everything the caller wrote is checked (a policy cannot be dodged through a system message)
      if (message.role !== "assistant" && regex.test(textOf(message.content))) {
        throw new RuntimeError("guardrail_blocked", "input matches a blocked policy", {
          details: { rule: "deny_pattern", pattern },
        });
      }
    }
  }
  if (rules.redactPii.length === 0) return [...messages];
  const redact = (text: string) => redactPii(text, rules);
  return messages.map((message): ChatMessage => {
    if (message.role !== "user" && message.role !== "tool") return message;
    if (typeof message.content === "string") return { ...message, content: redact(message.content) };
    // text parts of a multi-part message are redacted too; images pass as they are
    const content = message.content.map((part) =>
      part.type === "text" ? { ...part, text: redact(part.text) } : part,
    );
    return { ...message, content };
  });
}

/** The PII kinds of the agent in `text`, each replaced by its name (`[email]`). */
export function redactPii(text: string, rules: GuardrailsConfig): string {
  let result = text;
  for (const kind of rules.redactPii) result = result.replace(PII[kind], `[${kind}]`);
  return result;
}

/**
 * Whether the agent checks or changes its answers (deny patterns, structured output, numeric
 * bounds, PII redaction): a streamed answer is then held back until it passed, and only the
 * checked text is streamed.
 */
export function hasOutputChecks(rules: GuardrailsConfig): boolean {
  return (
    rules.outputDenyPatterns.length > 0 ||
    Boolean(rules.outputJsonSchema) ||
    Boolean(rules.numericBounds) ||
    rules.redactPii.length > 0
  );
}

/** Output checks before the user sees the answer; returns the text the user may see (PII redacted). */
export function checkOutput(text: string, rules: GuardrailsConfig): string {
  for (const pattern of rules.outputDenyPatterns) {
    if (new RegExp(pattern, "i").test(text)) {
      throw new RuntimeError("guardrail_blocked", "answer matches a blocked output policy", {
        details: { rule: "output_deny_pattern", pattern },
      });
    }
  }
  return redactPii(text, rules);
}

/** Structured-output checks: the JSON schema of the agent and numeric sanity bounds. Returns what is wrong. */
export function structuredOutputProblems(text: string, rules: GuardrailsConfig): string[] {
  if (!rules.outputJsonSchema && !rules.numericBounds) return [];
  let value: unknown;
  try {
    value = JSON.parse(text.trim().replace(/^```(?:json)?\s*|\s*```$/g, ""));
  } catch {
    return rules.outputJsonSchema ? ["the answer is not valid JSON"] : [];
  }
  const problems: string[] = [];
  if (rules.outputJsonSchema) {
    const schema = schemaFor(rules.outputJsonSchema);
    const result = schema.safeParse(value);
    if (!result.success)
      problems.push(
        ...result.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`),
      );
  }
  for (const [path, bounds] of Object.entries(rules.numericBounds ?? {})) {
    const found = path
      .split(".")
      .reduce<unknown>(
        (current, key) =>
          current && typeof current === "object" ? (current as Record<string, unknown>)[key] : undefined,
        value,
      );
    if (typeof found !== "number") continue;
    if (bounds.min !== undefined && found < bounds.min)
      problems.push(`${path}: ${found} is below ${bounds.min}`);
    if (bounds.max !== undefined && found > bounds.max)
      problems.push(`${path}: ${found} is above ${bounds.max}`);
  }
  return problems;
}

const schemaCache = new WeakMap<object, z.ZodType>();
function schemaFor(jsonSchema: Record<string, unknown>): z.ZodType {
  let schema = schemaCache.get(jsonSchema);
  if (!schema) {
    schema = z.fromJSONSchema(jsonSchema as Parameters<typeof z.fromJSONSchema>[0]);
    schemaCache.set(jsonSchema, schema);
  }
  return schema;
}
