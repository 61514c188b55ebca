import { randomUUID } from "node:crypto";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type ChatCompletionRequest,
  ID_PATTERN,
  modelOptionsOf,
  type RunEvent,
  type RunFinishedEvent,
  RuntimeError,
  textOf,
} from "@agent-runtime/contracts";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ChatCompletionBody } from "./api-schemas.js";
import { errorBody, parseBody } from "./http-errors.js";
import type { ModelCatalog } from "./model-catalog.js";
import { setRateHeaders } from "./response-headers.js";
import type { RouteDeps } from "./route-deps.js";
import type { SubmitOptions, SubmittedRun } from "./run-gateway.js";
import type { SseStream } from "./sse.js";
import { StreamedAnswer } from "./streamed-answer.js";

function usageOf(event: RunFinishedEvent) {
  return {
    prompt_tokens: event.usage.promptTokens,
    completion_tokens: event.usage.completionTokens,
    total_tokens: event.usage.totalTokens,
    prompt_tokens_details: { cached_tokens: event.usage.cachedTokens },
  };
}

/** A finished run that is not `completed` becomes a typed error. */
function failureOf(event: RunFinishedEvent): RuntimeError | undefined {
  if (event.status === "completed") return undefined;
  const error = event.error ?? {
    code: "internal" as const,
    message: `run ended ${event.status}`,
    retryable: false,
  };
  return new RuntimeError(error.code, error.message, {
    retryable: error.retryable,
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    details: {
      ...(typeof error.details === "object" && error.details ? error.details : {}),
      run_id: event.runId,
      status: event.status,
    },
  });
}

/** One chat turn being answered. */
interface ChatTurn {
  deps: RouteDeps;
  request: FastifyRequest;
  reply: FastifyReply;
  body: ChatCompletionBody;
  submission: Omit<SubmitOptions, "stream" | "onEvent">;
  threadId: string;
  id: string;
  created: number;
}

function finishReasonOf(event: RunFinishedEvent): string {
  return event.finishReason === "tool_calls" ? "tool_calls" : (event.finishReason ?? "stop");
}

/**
 * A `tool_choice` that forces a tool must have one to force: a named tool is one of the client's
 * `tools` or of the agent's own, and `required` needs at least one tool on offer.
 */
function checkToolChoice(body: ChatCompletionRequest, agent: AgentConfig): void {
  const choice = body.tool_choice;
  if (choice == null || choice === "auto" || choice === "none") return;
  const offered = [...(body.tools ?? []).map((tool) => tool.function.name), ...agent.tools];
  const name = choice === "required" ? undefined : choice.function.name;
  if (name === undefined ? offered.length > 0 : offered.includes(name)) return;
  const message =
    name === undefined
      ? "tool_choice is required but no tool is offered"
      : `tool_choice names "${name}", which is neither in tools nor one of the agent's tools`;
  throw new RuntimeError("validation", `invalid request body: tool_choice: ${message}`, {
    retryable: false,
    details: [{ path: "tool_choice", message }],
  });
}

/**
 * `POST /v1/chat/completions` — OpenAI wire format over an agent run. `model` names an agent, or a
 * model the proxy serves (then a plain gateway turn runs on it), or nothing (the default agent);
 * the client's model options travel with the run to every model call.
 */
export function registerChatRoute(app: FastifyInstance, deps: RouteDeps, catalog: ModelCatalog): void {
  app.post("/v1/chat/completions", async (request: FastifyRequest, reply: FastifyReply) => {
    const key = await deps.authenticate(request, "chat");
    const parsed = parseBody(ChatCompletionBody, request.body);
    const body = { ...parsed, model: parsed.model ?? catalog.defaultAgent };
    const target = await catalog.chatTarget(key.tenant, body.model);
    checkToolChoice(body, target.agentConfig);
    const modelOptions = modelOptionsOf(body);
    const headerThread = request.headers["x-thread-id"];
    const existingThread =
      typeof headerThread === "string" && headerThread.length > 0 ? headerThread : undefined;
    if (existingThread && !ID_PATTERN.test(existingThread)) {
      throw new RuntimeError(
        "validation",
        "x-thread-id must be 1-200 letters, digits, '_', '.', ':' or '-'",
        {
          retryable: false,
        },
      );
    }
    await deps.runs.admit("interactive");
    const release = await deps.limit(key.tenant, body.user, { runLeaseMs: deps.runTimeoutMs + 30_000 });
    setRateHeaders(reply, release);
    try {
      const threadId = existingThread ?? `thread_${randomUUID()}`;
      // a continued thread keeps its history server-side: only the new messages of this turn are sent
      const input = existingThread
        ? body.messages.slice(
            Math.max(0, body.messages.findLastIndex((message) => message.role === "assistant") + 1),
          )
        : body.messages;
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      const turn: ChatTurn = {
        deps,
        request,
        reply,
        body,
        threadId,
        id: `chatcmpl-${randomUUID().replaceAll("-", "")}`,
        created: Math.floor(Date.now() / 1000),
        submission: {
          tenant: key.tenant,
          agent: target.agent,
          ...(target.model ? { model: target.model } : {}),
          input: input.length > 0 ? input : body.messages,
          threadId,
          ...(existingThread ? {} : { newThread: true }),
          ...(body.user ? { userId: body.user } : {}),
          priority: "interactive",
          source: "chat",
          timeoutMs: deps.runTimeoutMs,
          ...(body.tools ? { clientTools: body.tools } : {}),
          ...(body.metadata ? { metadata: body.metadata } : {}),
          ...(body.deep_analysis ? { deepAnalysis: true } : {}),
          ...(body.temperature != null ? { temperature: body.temperature } : {}),
          ...(maxTokens ? { maxTokens } : {}),
          ...(Object.keys(modelOptions).length > 0 ? { modelOptions } : {}),
        },
      };
      return body.stream ? await streamAnswer(turn) : await completeAnswer(turn);
    } finally {
      release();
    }
  });
}

/** Stops following and cancels the run when the client goes away before its answer. */
function cancelOnDisconnect(turn: ChatTurn, run: SubmittedRun, answered: () => boolean): void {
  turn.reply.raw.on("close", () => {
    if (answered()) return;
    run.close();
    turn.deps.runs.cancelQuietly(turn.submission.tenant, run.runId, "the client disconnected");
  });
}

/** Waits for the run and answers one `chat.completion`. */
async function completeAnswer(turn: ChatTurn) {
  const run = await turn.deps.runs.submit({ ...turn.submission, stream: false });
  turn.reply.header("x-thread-id", turn.threadId).header("x-run-id", run.runId);
  let answered = false;
  cancelOnDisconnect(turn, run, () => answered);
  const finished = await run.finished.finally(() => {
    answered = true;
  });
  const failure = failureOf(finished);
  if (failure) throw failure;
  const output = finished.output ?? { role: "assistant" as const, content: "" };
  return {
    id: turn.id,
    object: "chat.completion",
    created: turn.created,
    model: turn.body.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: output.content === null ? null : textOf(output.content),
          ...(output.tool_calls?.length ? { tool_calls: output.tool_calls } : {}),
          refusal: null,
        },
        finish_reason: finishReasonOf(finished),
        logprobs: null,
      },
    ],
    usage: usageOf(finished),
  };
}

/**
 * How long a stream's response head waits for the first output. Until then a failure (open circuit
 * breaker, overloaded provider, a run that fails before its first word) is answered with its own
 * status and error body; after it, the head is written and a failure is an SSE error event.
 */
const HEAD_WAIT_MS = 15_000;

/**
 * SSE `chat.completion.chunk`s of the run's answer, then finish_reason, usage and `[DONE]`.
 * The stream ends equal to the run's output: what the deltas did not bring (a run taken over by
 * another worker mid-answer) is sent from the output when the run ends; if what was sent cannot
 * be completed into the output, the stream ends with a typed error, never with a false `stop`.
 */
async function streamAnswer(turn: ChatTurn): Promise<FastifyReply> {
  const { reply, body } = turn;
  const answer = new StreamedAnswer(new Set((body.tools ?? []).map((tool) => tool.function.name)));
  let sse: SseStream | undefined;
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    sse?.send({
      id: turn.id,
      object: "chat.completion.chunk",
      created: turn.created,
      model: body.model,
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    });
  // output that arrives before the response head is written waits here
  const held: Record<string, unknown>[] = [];
  let firstOutput!: () => void;
  const outputCame = new Promise<void>((resolve) => {
    firstOutput = resolve;
  });
  const onEvent = (event: RunEvent) => {
    if (event.type !== "delta") return;
    for (const delta of answer.accept(event)) {
      if (sse) chunk(delta);
      else held.push(delta);
      firstOutput();
    }
  };
  const run = await turn.deps.runs.submit({ ...turn.submission, stream: true, onEvent });
  reply.header("x-thread-id", turn.threadId).header("x-run-id", run.runId);
  let answered = false;
  cancelOnDisconnect(turn, run, () => answered);
  let ended: { event: RunFinishedEvent } | { error: unknown } | undefined;
  const settled = run.finished.then(
    (event) => {
      ended = { event };
    },
    (error: unknown) => {
      ended = { error };
    },
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    outputCame,
    settled,
    new Promise((resolve) => {
      timer = setTimeout(resolve, HEAD_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (held.length === 0 && ended) {
    // nothing was streamed yet: a failure is answered with its own status
    const failure = "error" in ended ? ended.error : failureOf(ended.event);
    if (failure) {
      answered = true;
      throw failure;
    }
  }
  if (reply.raw.destroyed) {
    // the client went away while the head waited (its run is cancelled)
    reply.hijack();
    return reply;
  }
  sse = turn.deps.sse.start(reply, { headers: { "x-thread-id": turn.threadId, "x-run-id": run.runId } });
  chunk({ role: "assistant", content: "" });
  for (const delta of held.splice(0)) chunk(delta);

  await settled;
  answered = true;
  const outcome = ended ?? { error: new RuntimeError("internal", "the run's end was not heard") };
  if ("error" in outcome) {
    const error = outcome.error;
    sse.send(
      errorBody(
        error instanceof RuntimeError
          ? error.toWire()
          : { code: "internal", message: "internal error", retryable: false },
      ),
    );
  } else {
    const finished = outcome.event;
    const failure = failureOf(finished);
    const rest = failure ? undefined : answer.remainder(finished.output);
    if (failure) {
      sse.send(errorBody(failure.toWire()));
    } else if (rest && !rest.matches) {
      sse.send(
        errorBody({
          code: "internal",
          message: `the streamed answer does not match the run's output (${rest.reason}); GET /v1/runs/${run.runId} has the answer`,
          retryable: false,
          details: { run_id: run.runId, status: finished.status },
        }),
      );
    } else {
      if (rest?.content) chunk({ content: rest.content });
      if (rest?.toolCalls.length) chunk({ tool_calls: rest.toolCalls });
      chunk({}, finishReasonOf(finished));
      if (body.stream_options?.include_usage) {
        sse.send({
          id: turn.id,
          object: "chat.completion.chunk",
          created: turn.created,
          model: body.model,
          choices: [],
          usage: usageOf(finished),
        });
      }
    }
  }
  sse.send("[DONE]");
  sse.end();
  return reply;
}
