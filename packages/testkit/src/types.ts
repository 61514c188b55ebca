/** What the fake reads from a chat-completions body (lenient: it is test input). */
export interface ChatCompletionRequestBody {
  model: string;
  messages: Array<{
    role: string;
    content?: unknown;
    tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
    tool_call_id?: string;
  }>;
  tools?: Array<{ type: string; function: { name: string; description?: string; parameters?: unknown } }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  temperature?: number;
  seed?: number;
  [key: string]: unknown;
}

export type Fault =
  | { kind: "latency"; ms: number }
  | { kind: "status"; status: number; retryAfter?: number; body?: unknown }
  | { kind: "hang" }
  | { kind: "malformed" }
  | { kind: "disconnect" }
  | { kind: "stream-break"; afterChunks: number };

export interface ScriptToolCall {
  id?: string;
  name: string;
  /** An object is JSON-encoded; a string is sent as is. */
  arguments: unknown;
}

export interface ScriptStep {
  content?: string;
  toolCalls?: ScriptToolCall[];
  /** `false` omits usage; default is estimated from the text. */
  usage?: { prompt_tokens?: number; completion_tokens?: number; cached_tokens?: number } | false;
  finishReason?: string;
  latencyMs?: number;
  chunkDelayMs?: number;
  fault?: Fault;
  model?: string;
}

export type ChatHandler = (
  body: ChatCompletionRequestBody,
  context: { index: number },
) => ScriptStep | Promise<ScriptStep>;

export interface RecordedRequest {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  receivedAt: number;
}
