import type { AssistantMessage, DeltaEvent, ToolCall } from "@agent-runtime/contracts";
import { textOf } from "@agent-runtime/contracts";

/** A tool-call fragment in OpenAI's chunk format. */
export interface ToolCallChunk {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments?: string };
}

/** What is left to stream once the run's output is known, or why the stream cannot match it. */
export type Remainder =
  | { matches: true; content: string; toolCalls: ToolCallChunk[] }
  | { matches: false; reason: string };

interface StreamedCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * What one chat stream has sent, kept so that it always ends equal to the run's output.
 *
 * Deltas carry their step and their offset in that step's text. A step's text sent again (a run
 * taken over by another worker) is taken only past what was already sent; an earlier step's text
 * arriving after a later one is dropped. Once a delta is missing (an offset past what was sent, or
 * text that differs from it) nothing more is forwarded: the rest is sent from the run's output when
 * it ends, or the stream ends with a typed error if what was sent is not the start of that output.
 */
export class StreamedAnswer {
  private step = -1;
  private part = "";
  private halted = false;
  private readonly calls = new Map<number, StreamedCall>();
  /** The text sent so far. */
  text = "";

  constructor(
    /** The client's own tools: only calls of these are streamed (the agent's tools run on the server). */
    private readonly clientToolNames: ReadonlySet<string>,
  ) {}

  /** Takes a delta event; returns the chunk deltas to send for it (none when it is a repeat). */
  accept(event: DeltaEvent): Record<string, unknown>[] {
    if (this.halted) return [];
    const out: Record<string, unknown>[] = [];
    if (event.content) {
      const fresh = this.acceptText(event.step, event.content, event.offset);
      if (fresh) out.push({ content: fresh });
    }
    if (event.toolCalls?.length && !this.halted) {
      const toolCalls: ToolCallChunk[] = [];
      for (const delta of event.toolCalls) {
        let call = this.calls.get(delta.index);
        if (!call) {
          if (!delta.name || !this.clientToolNames.has(delta.name)) continue;
          call = { id: delta.id ?? "", name: delta.name, arguments: "" };
          this.calls.set(delta.index, call);
          toolCalls.push({
            index: delta.index,
            ...(call.id ? { id: call.id, type: "function" as const } : {}),
            function: { name: call.name, ...(delta.arguments ? { arguments: delta.arguments } : {}) },
          });
        } else if (delta.arguments) {
          toolCalls.push({ index: delta.index, function: { arguments: delta.arguments } });
        }
        call.arguments += delta.arguments ?? "";
      }
      if (toolCalls.length > 0) out.push({ tool_calls: toolCalls });
    }
    return out;
  }

  private acceptText(step: number, content: string, offset: number | undefined): string {
    if (step < this.step) return "";
    if (step > this.step) {
      this.step = step;
      this.part = "";
    }
    const at = offset ?? this.part.length;
    const overlap = this.part.length - at;
    if (overlap < 0 || this.part.slice(at) !== content.slice(0, overlap)) {
      // a gap, or text other than what was sent: the run's end settles it
      this.halted = true;
      return "";
    }
    const fresh = content.slice(overlap);
    this.part += fresh;
    this.text += fresh;
    return fresh;
  }

  /** What must still be sent so that the stream equals `output`. */
  remainder(output: AssistantMessage | undefined): Remainder {
    const text = textOf(output?.content);
    if (!text.startsWith(this.text)) {
      return {
        matches: false,
        reason: `${this.text.length} characters were streamed that are not the start of the run's answer`,
      };
    }
    const calls: ToolCall[] = output?.tool_calls ?? [];
    const toolCalls: ToolCallChunk[] = [];
    for (const index of this.calls.keys()) {
      if (index >= calls.length) return { matches: false, reason: `tool call ${index} is not in the answer` };
    }
    for (const [index, call] of calls.entries()) {
      const streamed = this.calls.get(index);
      if (!streamed) {
        toolCalls.push({
          index,
          id: call.id,
          type: "function",
          function: { name: call.function.name, arguments: call.function.arguments },
        });
        continue;
      }
      if (
        (streamed.id && streamed.id !== call.id) ||
        streamed.name !== call.function.name ||
        !call.function.arguments.startsWith(streamed.arguments)
      ) {
        return { matches: false, reason: `tool call ${index} was streamed otherwise than it was answered` };
      }
      const rest = call.function.arguments.slice(streamed.arguments.length);
      if (rest) toolCalls.push({ index, function: { arguments: rest } });
    }
    return { matches: true, content: text.slice(this.text.length), toolCalls };
  }
}
