import { GuardrailsConfig } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { checkInput, checkOutput, hasOutputChecks, structuredOutputProblems } from "./guardrails.js";

const rules = (overrides: Partial<GuardrailsConfig> = {}) => GuardrailsConfig.parse(overrides);
const blocked = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RuntimeError);
    return (error as RuntimeError).toWire();
  }
  throw new Error("expected the guardrail to block");
};

describe("input checks", () => {
  it("blocks input over the size limit with a typed reason", () => {
    const wire = blocked(() =>
      checkInput([{ role: "user", content: "x".repeat(11) }], rules({ maxInputChars: 10 })),
    );
    expect(wire).toMatchObject({ code: "guardrail_blocked", details: { rule: "max_input_chars" } });
  });

  it("blocks denied patterns in user and system messages, case-insensitively", () => {
    const policy = rules({ denyPatterns: ["launch\\s+codes"] });
    expect(blocked(() => checkInput([{ role: "user", content: "the LAUNCH  codes" }], policy))).toMatchObject(
      {
        code: "guardrail_blocked",
        details: { rule: "deny_pattern", pattern: "launch\\s+codes" },
      },
    );
    expect(blocked(() => checkInput([{ role: "system", content: "reveal launch codes" }], policy)).code).toBe(
      "guardrail_blocked",
    );
    expect(checkInput([{ role: "user", content: "lunch codes" }], policy)).toHaveLength(1);
  });

  it("redacts the configured PII kinds in strings, text parts and tool results, and nothing else", () => {
    const checked = checkInput(
      [
        { role: "system", content: "admin@example.com stays in the system prompt" },
        { role: "user", content: "mail ada@example.com, card 4111 1111 1111 1111, ssn 123-45-6789" },
        {
          role: "user",
          content: [
            { type: "text", text: "or bob@example.org" },
            { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "found carol@example.net" },
      ],
      rules({ redactPii: ["email", "credit_card"] }),
    );
    expect(checked[0]?.content).toBe("admin@example.com stays in the system prompt");
    expect(checked[1]?.content).toBe("mail [email], card [credit_card], ssn 123-45-6789");
    expect(checked[2]?.content).toEqual([
      { type: "text", text: "or [email]" },
      { type: "image_url", image_url: { url: "https://example.com/a.png" } },
    ]);
    expect(checked[3]?.content).toBe("found [email]");
  });
});

describe("output checks", () => {
  it("blocks answers matching an output policy", () => {
    const policy = rules({ outputDenyPatterns: ["top secret"] });
    expect(blocked(() => checkOutput("this is TOP SECRET", policy))).toMatchObject({
      code: "guardrail_blocked",
      details: { rule: "output_deny_pattern" },
    });
    expect(() => checkOutput("ordinary", policy)).not.toThrow();
  });

  it("redacts the configured PII kinds in answers", () => {
    const policy = rules({ redactPii: ["email", "phone"] });
    expect(checkOutput("write to ada@example.com or call 555-123-4567", policy)).toBe(
      "write to [email] or call [phone]",
    );
    expect(checkOutput("ada@example.com", rules())).toBe("ada@example.com");
  });

  it("lists schema and numeric-bound problems of a structured answer", () => {
    const policy = rules({
      outputJsonSchema: { type: "object", properties: { total: { type: "number" } }, required: ["total"] },
      numericBounds: { total: { min: 0, max: 100 }, "nested.count": { max: 3 } },
    });
    expect(structuredOutputProblems('{"total": 5}', policy)).toEqual([]);
    expect(structuredOutputProblems('```json\n{"total": 5}\n```', policy)).toEqual([]);
    expect(structuredOutputProblems("five", policy)).toEqual(["the answer is not valid JSON"]);
    expect(structuredOutputProblems('{"sum": 5}', policy)[0]).toMatch(/^total: /);
    expect(structuredOutputProblems('{"total": -1, "nested": {"count": 9}}', policy)).toEqual([
      "total: -1 is below 0",
      "nested.count: 9 is above 3",
    ]);
  });

  it("says which agents check their answers", () => {
    expect(hasOutputChecks(rules())).toBe(false);
    expect(hasOutputChecks(rules({ outputDenyPatterns: ["x"] }))).toBe(true);
    expect(hasOutputChecks(rules({ numericBounds: { a: { max: 1 } } }))).toBe(true);
    expect(hasOutputChecks(rules({ redactPii: ["email"] }))).toBe(true);
  });
});
