import { type RunRequest, RuntimeError, type ToolSpec } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { checkResponseFormat, stepModelOptions } from "./model-call.js";

const tool = (name: string): ToolSpec => ({ type: "function", function: { name } });
const run = (modelOptions: RunRequest["modelOptions"]) => ({ modelOptions }) as RunRequest;

describe("the client's model options per step", () => {
  it("forces a tool on the first step only, and only a tool on offer", () => {
    const named = { type: "function" as const, function: { name: "get_weather" } };
    const tools = [tool("calculator"), tool("get_weather")];
    expect(stepModelOptions(run({ toolChoice: named }), tools, 0).toolChoice).toEqual(named);
    expect(stepModelOptions(run({ toolChoice: named }), tools, 1).toolChoice).toBeUndefined();
    expect(stepModelOptions(run({ toolChoice: "required" }), tools, 0).toolChoice).toBe("required");
    expect(stepModelOptions(run({ toolChoice: "required" }), tools, 2).toolChoice).toBeUndefined();
    expect(stepModelOptions(run({ toolChoice: named }), [tool("calculator")], 0).toolChoice).toBeUndefined();
    expect(stepModelOptions(run({ toolChoice: "none" }), tools, 3).toolChoice).toBe("none");
  });

  it("sends tool options only with tools, the rest always", () => {
    const options = run({ toolChoice: "auto", parallelToolCalls: false, seed: 3, topP: 0.5 });
    expect(stepModelOptions(options, [], 0)).toEqual({ seed: 3, topP: 0.5 });
    expect(stepModelOptions(options, [tool("x")], 0)).toEqual({
      seed: 3,
      topP: 0.5,
      toolChoice: "auto",
      parallelToolCalls: false,
    });
    expect(stepModelOptions(run(undefined), [tool("x")], 0)).toEqual({});
  });
});

describe("response_format checks", () => {
  const strict = {
    type: "json_schema" as const,
    json_schema: {
      name: "total",
      strict: true,
      schema: { type: "object", properties: { total: { type: "number" } }, required: ["total"] },
    },
  };
  const answer = (content: string) => ({ role: "assistant" as const, content });

  it("passes JSON of the schema, refuses other JSON and text", () => {
    expect(() => checkResponseFormat(answer('{"total": 3}'), strict)).not.toThrow();
    expect(() => checkResponseFormat(answer('{"total": "3"}'), strict)).toThrow(/schema "total": total/);
    expect(() => checkResponseFormat(answer("three"), strict)).toThrow(RuntimeError);
    expect(() => checkResponseFormat(answer("{}"), { type: "json_object" })).not.toThrow();
    expect(() => checkResponseFormat(answer("not json"), { type: "json_object" })).toThrow(/not the JSON/);
  });

  it("checks only JSON syntax when the schema is not strict, and nothing for tool calls", () => {
    const loose = { ...strict, json_schema: { ...strict.json_schema, strict: false } };
    expect(() => checkResponseFormat(answer('{"total": "3"}'), loose)).not.toThrow();
    const toolCall = {
      role: "assistant" as const,
      content: null,
      tool_calls: [{ id: "c", type: "function" as const, function: { name: "x", arguments: "{}" } }],
    };
    expect(() => checkResponseFormat(toolCall, strict)).not.toThrow();
  });
});
