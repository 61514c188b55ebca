import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { type EmbeddingOptions, estimateTokens, fakeEmbedding } from "./embedding.js";
import type { ChatCompletionRequestBody, ChatHandler, Fault, RecordedRequest, ScriptStep } from "./types.js";

export interface FakeOpenAIOptions {
  port?: number;
  host?: string;
  defaultHandler?: ChatHandler;
  embeddingDimensions?: number;
  synonyms?: string[][];
  /** Latency added to every answer (benchmarks of slow models). */
  latencyMs?: number;
}

export interface FakeOpenAI {
  /** Base URL including `/v1`. */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Requests whose caller hung up before the answer was complete (cancelled or timed-out calls). */
  readonly abandoned: number;
  /** Parsed bodies of the chat-completion calls, oldest first (bodies that were not JSON are left out). */
  chatRequests(): ChatCompletionRequestBody[];
  enqueue(...steps: ScriptStep[]): void;
  setHandler(handler: ChatHandler | null): void;
  setFault(fault: Fault | null): void;
  /** Clears queue, recorded requests, handler and fault. */
  reset(): void;
  close(): Promise<void>;
}

/** Replies `echo: <last user message>`. */
export const echoHandler: ChatHandler = (body) => {
  const messages = body.messages;
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    if (message.role === "user") return { content: `echo: ${contentText(message.content)}` };
  }
  return { content: "echo: " };
};

export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === "object" && "text" in part ? String(part.text) : ""))
      .join("");
  }
  return "";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function openaiError(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

type StreamBreak = Extract<Fault, { kind: "stream-break" }>;

function streamBreakOf(fault: Fault | null | undefined): StreamBreak | undefined {
  return fault?.kind === "stream-break" ? fault : undefined;
}

/** Splits text into stream pieces of a few characters, keeping word boundaries where it can. */
function pieces(text: string): string[] {
  const parts = text.match(/\S+\s*|\s+/g) ?? [];
  return parts.length > 0 ? parts : [text];
}

/** An OpenAI-compatible model server on loopback, scripted per test, with fault injection. */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const queue: ScriptStep[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  const embeddingOptions: EmbeddingOptions = {
    dimensions: options.embeddingDimensions ?? 64,
    ...(options.synonyms ? { synonyms: options.synonyms } : {}),
  };
  let handler: ChatHandler | null = options.defaultHandler ?? null;
  let fault: Fault | null = null;
  let chatIndex = 0;
  let abandoned = 0;
  let idCounter = 0;

  /** Applies a fault; returns true when the response is fully handled. */
  async function applyFault(active: Fault | null | undefined, response: ServerResponse): Promise<boolean> {
    if (!active) return false;
    switch (active.kind) {
      case "latency":
        await sleep(active.ms);
        return false;
      case "status":
        sendJson(
          response,
          active.status,
          active.body ??
            openaiError(
              `injected status ${active.status}`,
              active.status === 429 ? "rate_limit_error" : "server_error",
            ),
          active.retryAfter === undefined ? {} : { "retry-after": String(active.retryAfter) },
        );
        return true;
      case "hang":
        hanging.add(response);
        response.on("close", () => hanging.delete(response));
        return true;
      case "malformed":
        response.writeHead(200, { "content-type": "application/json" });
        response.end('{"id": "broken", "choices": [ {"message": ');
        return true;
      case "disconnect":
        response.socket?.destroy();
        return true;
      case "stream-break":
        return false;
    }
  }

  function usageOf(step: ScriptStep, body: ChatCompletionRequestBody, completionText: string) {
    if (step.usage === false) return undefined;
    let prompt = step.usage?.prompt_tokens;
    if (prompt === undefined) {
      // as if the message texts were joined by newlines, without building the string
      let promptChars = Math.max(0, body.messages.length - 1);
      for (const message of body.messages) promptChars += contentText(message.content).length;
      prompt = Math.max(1, Math.ceil(promptChars / 4));
    }
    const completion = step.usage?.completion_tokens ?? estimateTokens(completionText);
    return {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      prompt_tokens_details: { cached_tokens: step.usage?.cached_tokens ?? 0 },
    };
  }

  function toolCallsOf(step: ScriptStep) {
    return (step.toolCalls ?? []).map((call, index) => ({
      id: call.id ?? `call_${++idCounter}_${index}`,
      type: "function" as const,
      function: {
        name: call.name,
        arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments ?? {}),
      },
    }));
  }

  async function chat(body: ChatCompletionRequestBody, response: ServerResponse) {
    if (!body || typeof body !== "object" || !Array.isArray(body.messages)) {
      sendJson(response, 400, openaiError("'messages' must be an array", "invalid_request_error"));
      return;
    }
    const index = chatIndex++;
    const persistent = fault;
    // the persistent fault comes first, so scripted steps are kept for when the "provider" recovers
    if (await applyFault(persistent, response)) return;
    const step = queue.shift() ?? (await (handler ?? echoHandler)(body, { index }));
    if (await applyFault(step.fault, response)) return;
    const delay = (step.latencyMs ?? 0) + (options.latencyMs ?? 0);
    if (delay > 0) await sleep(delay);
    const model = step.model ?? body.model;
    const toolCalls = toolCallsOf(step);
    const content = step.content ?? (toolCalls.length > 0 ? null : "");
    const finishReason = step.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop");
    const completionText = (content ?? "") + toolCalls.map((call) => call.function.arguments).join("");
    const usage = usageOf(step, body, completionText);
    const id = `chatcmpl-fake-${++idCounter}`;
    const created = Math.floor(Date.now() / 1000);

    if (!body.stream) {
      sendJson(response, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content,
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
              refusal: null,
            },
            finish_reason: finishReason,
            logprobs: null,
          },
        ],
        ...(usage ? { usage } : {}),
      });
      return;
    }

    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const breakAfter = streamBreakOf(persistent) ?? streamBreakOf(step.fault);
    let sent = 0;
    const breakStream = async () => {
      await sleep(20); // let what was sent reach the client first
      response.socket?.destroy();
      throw new Error("stream broken on purpose");
    };
    const chunk = async (choices: unknown[], extra: Record<string, unknown> = {}) => {
      if (breakAfter && sent >= breakAfter.afterChunks) await breakStream();
      response.write(
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`,
      );
      sent++;
      if (step.chunkDelayMs) await sleep(step.chunkDelayMs);
    };
    try {
      await chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
      if (content) {
        for (const piece of pieces(content))
          await chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]);
      }
      for (const [callIndex, call] of toolCalls.entries()) {
        await chunk([
          {
            index: 0,
            delta: {
              tool_calls: [
                {
                  index: callIndex,
                  id: call.id,
                  type: "function",
                  function: { name: call.function.name, arguments: "" },
                },
              ],
            },
            finish_reason: null,
          },
        ]);
        const args = call.function.arguments;
        const half = Math.ceil(args.length / 2);
        for (const part of [args.slice(0, half), args.slice(half)].filter(Boolean)) {
          await chunk([
            {
              index: 0,
              delta: { tool_calls: [{ index: callIndex, function: { arguments: part } }] },
              finish_reason: null,
            },
          ]);
        }
      }
      await chunk([{ index: 0, delta: {}, finish_reason: finishReason }]);
      if (usage && body.stream_options?.include_usage) await chunk([], { usage });
      // a break never ends cleanly, even when it asks for more chunks than there are
      if (breakAfter) await breakStream();
      response.end("data: [DONE]\n\n");
    } catch {
      // the socket was destroyed on purpose
    }
  }

  async function embeddings(body: Record<string, unknown>, response: ServerResponse) {
    if (await applyFault(fault, response)) return;
    if (options.latencyMs) await sleep(options.latencyMs);
    const input = body.input;
    const texts = typeof input === "string" ? [input] : Array.isArray(input) ? input.map(String) : null;
    if (!texts || texts.length === 0) {
      sendJson(
        response,
        400,
        openaiError("'input' must be a string or a non-empty array of strings", "invalid_request_error"),
      );
      return;
    }
    const tokens = texts.reduce((sum, text) => sum + estimateTokens(text), 0);
    sendJson(response, 200, {
      object: "list",
      data: texts.map((text, index) => {
        const vector = fakeEmbedding(text, embeddingOptions);
        // the openai client asks for base64 (little-endian float32) unless told otherwise
        const embedding =
          body.encoding_format === "base64"
            ? Buffer.from(new Float32Array(vector).buffer).toString("base64")
            : vector;
        return { object: "embedding", index, embedding };
      }),
      model: String(body.model ?? "fake-embedding"),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    response.on("close", () => {
      if (!response.writableFinished) abandoned++;
    });
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const path = (request.url ?? "/").split("?")[0] ?? "/";
      let body: unknown = raw;
      let parsed = true;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          parsed = false;
        }
      }
      requests.push({
        path,
        method: request.method ?? "GET",
        headers: request.headers,
        body,
        receivedAt: Date.now(),
      });
      const route = async () => {
        if (!parsed) {
          sendJson(response, 400, openaiError("request body is not valid JSON", "invalid_request_error"));
          return;
        }
        if (request.method === "POST" && path === "/v1/chat/completions") {
          await chat(body as ChatCompletionRequestBody, response);
        } else if (request.method === "POST" && path === "/v1/embeddings") {
          await embeddings(body as Record<string, unknown>, response);
        } else if (request.method === "GET" && path === "/v1/models") {
          if (await applyFault(fault, response)) return;
          sendJson(response, 200, {
            object: "list",
            data: [{ id: "fake-model", object: "model", created: 0, owned_by: "testkit" }],
          });
        } else {
          sendJson(
            response,
            404,
            openaiError(`no route ${request.method} ${path}`, "invalid_request_error", "not_found"),
          );
        }
      };
      route().catch((error: unknown) => {
        if (!response.headersSent) sendJson(response, 500, openaiError(String(error), "server_error"));
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}/v1`,
    port,
    requests,
    get abandoned() {
      return abandoned;
    },
    chatRequests: () =>
      requests
        .filter(
          (entry) =>
            entry.path === "/v1/chat/completions" && typeof entry.body === "object" && entry.body !== null,
        )
        .map((entry) => entry.body as ChatCompletionRequestBody),
    enqueue: (...steps) => {
      queue.push(...steps);
    },
    setHandler: (next) => {
      handler = next;
    },
    setFault: (next) => {
      fault = next;
    },
    reset: () => {
      queue.length = 0;
      requests.length = 0;
      handler = options.defaultHandler ?? null;
      fault = null;
      chatIndex = 0;
    },
    close: async () => {
      for (const response of hanging) response.socket?.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function textStep(content: string, extra: Partial<ScriptStep> = {}): ScriptStep {
  return { content, ...extra };
}

export function toolCallStep(name: string, args: unknown, extra: Partial<ScriptStep> = {}): ScriptStep {
  return { toolCalls: [{ name, arguments: args }], ...extra };
}
