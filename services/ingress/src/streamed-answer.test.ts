import type { DeltaEvent } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { StreamedAnswer } from "./streamed-answer.js";

const delta = (step: number, content: string, offset?: number): DeltaEvent => ({
  type: "delta",
  runId: "run_1",
  seq: 0,
  ts: 0,
  step,
  content,
  ...(offset === undefined ? {} : { offset }),
});
const texts = (answer: StreamedAnswer, events: DeltaEvent[]) =>
  events.flatMap((event) => answer.accept(event).map((chunk) => chunk.content));

describe("streamed answer", () => {
  it("sends a step's text once when it comes again from its start, and drops an earlier step's", () => {
    const answer = new StreamedAnswer(new Set());
    expect(
      texts(answer, [
        delta(0, "Hel", 0),
        delta(0, "lo", 3),
        delta(0, "Hello wor", 0),
        delta(0, "ld", 9),
        delta(1, "next", 0),
        delta(0, "Hello world", 0),
      ]),
    ).toEqual(["Hel", "lo", " wor", "ld", "next"]);
    expect(answer.text).toBe("Hello worldnext");
    expect(answer.remainder({ role: "assistant", content: "Hello worldnext step" })).toEqual({
      matches: true,
      content: " step",
      toolCalls: [],
    });
  });

  it("stops at a gap or other text, and says when what was sent is not the start of the output", () => {
    const gap = new StreamedAnswer(new Set());
    expect(texts(gap, [delta(0, "ab", 0), delta(0, "de", 3), delta(0, "f", 5)])).toEqual(["ab"]);
    expect(gap.remainder({ role: "assistant", content: "abcdef" })).toMatchObject({ content: "cdef" });
    const other = new StreamedAnswer(new Set());
    expect(texts(other, [delta(0, "the total is five", 0), delta(0, '{"t', 0)])).toEqual([
      "the total is five",
    ]);
    expect(other.remainder({ role: "assistant", content: '{"total": 5}' }).matches).toBe(false);
  });

  it("streams only the client's tool calls and completes them from the output", () => {
    const answer = new StreamedAnswer(new Set(["get_weather"]));
    const event = (toolCalls: DeltaEvent["toolCalls"]): DeltaEvent => ({
      type: "delta",
      runId: "run_1",
      seq: 0,
      ts: 0,
      step: 0,
      ...(toolCalls ? { toolCalls } : {}),
    });
    expect(answer.accept(event([{ index: 5, id: "c9", name: "calculator", arguments: "{}" }]))).toEqual([]);
    expect(answer.accept(event([{ index: 0, id: "c1", name: "get_weather", arguments: '{"ci' }]))).toEqual([
      {
        tool_calls: [
          { index: 0, id: "c1", type: "function", function: { name: "get_weather", arguments: '{"ci' } },
        ],
      },
    ]);
    const output = {
      role: "assistant" as const,
      content: null,
      tool_calls: [
        {
          id: "c1",
          type: "function" as const,
          function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
        },
        { id: "c2", type: "function" as const, function: { name: "get_weather", arguments: "{}" } },
      ],
    };
    expect(answer.remainder(output)).toEqual({
      matches: true,
      content: "",
      toolCalls: [
        { index: 0, function: { arguments: 'ty":"Oslo"}' } },
        { index: 1, id: "c2", type: "function", function: { name: "get_weather", arguments: "{}" } },
      ],
    });
  });
});
