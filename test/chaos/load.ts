/**
 * Steady load on the chaos stack through the official `openai` client: plain turns (new and
 * continued threads), tool turns that call the side-effecting `ship` webhook, streamed turns, and
 * batches of CloudEvents on `POST /v1/events`, from closed loops and from an open-loop prober.
 * Every request's outcome is recorded, classified by what its client saw.
 */
import { ErrorCode, isRetryableCode } from "@agent-runtime/contracts";
import OpenAI from "openai";
import { CHAOS_KEY, RUN_TIMEOUT_MS } from "./chaos-stack.js";
import { LONG_MARKER } from "./model-script.js";

/** How long a client waits before it gives up on an answer: past this the request is hung. */
export const CLIENT_TIMEOUT_MS = RUN_TIMEOUT_MS + 15_000;

export type Kind = "plain" | "tool" | "stream" | "event";

/**
 * - `ok`: a 2xx (for a stream: it ended with a finish reason and `[DONE]`)
 * - `typed_error`: an error in the documented shape with a known code (retryable or not)
 * - `untyped_error`: anything else the server answered (wrong shape, unknown code, a stream that
 *   ended without a finish reason or an error)
 * - `connection_cut`: the connection failed (refused or reset); the suite attributes it to a
 *   killed ingress replica when it can
 * - `hung`: no answer within CLIENT_TIMEOUT_MS
 */
export type Result = "ok" | "typed_error" | "untyped_error" | "connection_cut" | "hung";

export interface Outcome {
  seq: number;
  kind: Kind;
  /** The ingress replica the request went to. */
  ingress: string;
  startedAt: number;
  endedAt: number;
  result: Result;
  status?: number;
  code?: string;
  retryable?: boolean;
  runId?: string;
  threadId?: string;
  /** The order a tool turn or an event asked to ship. */
  orders?: string[];
  /** Event ids of an events batch. */
  eventIds?: string[];
  /** The answer's text (non-streamed), or the text streamed. */
  text?: string;
  finishReason?: string;
  /** Tool-call chunks a stream carried. */
  toolCallChunks?: number;
  message?: string;
}

export interface Target {
  id: string;
  url: string;
}

export interface LoadOptions {
  /** Ingress replicas that are up now (the suite's load balancer). */
  targets: () => Target[];
  /** Client loops per kind of request. */
  workers: Record<Kind, number>;
  /** Pause between two requests of one loop. */
  pauseMs: number;
  /** The prober sends one request of each kind this often, answered or not. */
  probeEveryMs: number;
  /** The prober skips a tick while this many requests are in flight. */
  maxInFlight: number;
}

export interface Load {
  outcomes: Outcome[];
  /** Requests sent and not yet answered. */
  inFlight(): number;
  /** Stops starting requests and waits for the ones in flight to end (each ends by its client timeout). */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const codes = new Set<string>(ErrorCode.options);

/** What an error a client got says: typed (documented shape, known code) or not. */
export function classifyError(
  error: unknown,
): Pick<Outcome, "result" | "status" | "code" | "retryable" | "message" | "runId"> {
  const message = error instanceof Error ? error.message.slice(0, 300) : String(error).slice(0, 300);
  if (error instanceof OpenAI.APIConnectionTimeoutError) return { result: "hung", message };
  if (error instanceof OpenAI.APIConnectionError) return { result: "connection_cut", message };
  if (error instanceof OpenAI.APIError) {
    const runId = error.headers?.get("x-run-id") ?? undefined;
    const body = error.error as { type?: unknown; code?: unknown; message?: unknown } | undefined;
    const code = typeof body?.code === "string" ? body.code : undefined;
    const status = typeof error.status === "number" ? error.status : undefined;
    if (code && codes.has(code) && typeof body?.type === "string" && typeof body.message === "string") {
      return {
        result: "typed_error",
        ...(status === undefined ? {} : { status }),
        ...(runId ? { runId } : {}),
        code,
        retryable: isRetryableCode(code as ErrorCode),
        message,
      };
    }
    return {
      result: "untyped_error",
      ...(status === undefined ? {} : { status }),
      ...(runId ? { runId } : {}),
      message,
    };
  }
  // fetch's own failures: a reset or refused connection, an abort at the client timeout
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError"))
    return { result: "hung", message };
  if (
    error instanceof TypeError ||
    (error instanceof Error && /terminated|ECONN|socket/i.test(error.message))
  )
    return { result: "connection_cut", message };
  return { result: "untyped_error", message };
}

export function startLoad(options: LoadOptions): Load {
  const outcomes: Outcome[] = [];
  const clients = new Map<string, OpenAI>();
  let seq = 0;
  let stopped = false;
  let inFlight = 0;
  let next = 0;
  const clientFor = (target: Target) => {
    let client = clients.get(target.url);
    if (!client) {
      client = new OpenAI({
        baseURL: `${target.url}/v1`,
        apiKey: CHAOS_KEY,
        maxRetries: 0,
        timeout: CLIENT_TIMEOUT_MS,
      });
      clients.set(target.url, client);
    }
    return client;
  };
  const pick = (): Target => {
    const targets = options.targets();
    return targets[next++ % targets.length]!;
  };

  async function record(kind: Kind, send: (target: Target, outcome: Outcome) => Promise<void>) {
    const target = pick();
    const outcome: Outcome = {
      seq: seq++,
      kind,
      ingress: target.id,
      startedAt: Date.now(),
      endedAt: 0,
      result: "ok",
    };
    inFlight++;
    try {
      await send(target, outcome);
    } catch (error) {
      // a run id already known (a stream's header) is kept when the error does not carry one
      const { runId, ...rest } = classifyError(error);
      Object.assign(outcome, rest, runId ? { runId } : {});
    } finally {
      inFlight--;
      outcome.endedAt = Date.now();
      outcomes.push(outcome);
    }
  }

  /** A plain turn, on a new thread or continuing `thread`; resolves to the thread it used. */
  const plainTurn = async (label: string, thread?: string): Promise<string | undefined> => {
    let used: string | undefined;
    await record("plain", async (target, outcome) => {
      const { data, response } = await clientFor(target)
        .chat.completions.create(
          { model: "assistant", messages: [{ role: "user", content: `plain ${label}` }] },
          thread ? { headers: { "x-thread-id": thread } } : {},
        )
        .withResponse();
      outcome.runId = response.headers.get("x-run-id") ?? undefined;
      outcome.threadId = response.headers.get("x-thread-id") ?? undefined;
      outcome.text = data.choices[0]?.message.content ?? "";
      outcome.finishReason = data.choices[0]?.finish_reason ?? undefined;
      used = outcome.threadId;
    });
    return used;
  };

  /** A tool turn: the `shipper` agent ships `order` through the webhook. */
  const toolTurn = (order: string) =>
    record("tool", async (target, outcome) => {
      outcome.orders = [order];
      const { data, response } = await clientFor(target)
        .chat.completions.create({
          model: "shipper",
          messages: [{ role: "user", content: `please SHIP:${order} today` }],
        })
        .withResponse();
      outcome.runId = response.headers.get("x-run-id") ?? undefined;
      outcome.text = data.choices[0]?.message.content ?? "";
      outcome.finishReason = data.choices[0]?.finish_reason ?? undefined;
    });

  /** A streamed turn (a long answer sent in many chunks). */
  const streamTurn = (label: string) =>
    record("stream", async (target, outcome) => {
      const { data, response } = await clientFor(target)
        .chat.completions.create({
          model: "assistant",
          stream: true,
          messages: [{ role: "user", content: `${LONG_MARKER} answer ${label}` }],
        })
        .withResponse();
      outcome.runId = response.headers.get("x-run-id") ?? undefined;
      outcome.text = "";
      outcome.toolCallChunks = 0;
      // the text so far is kept on the outcome, so a stream that fails still shows what came
      for await (const chunk of data) {
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta.content) outcome.text += choice.delta.content;
        if (choice.delta.tool_calls?.length) outcome.toolCallChunks += 1;
        if (choice.finish_reason) outcome.finishReason = choice.finish_reason;
      }
      if (!outcome.finishReason) {
        outcome.result = "untyped_error";
        outcome.message = "the stream ended without a finish reason or an error";
      }
    });

  /** A batch of `size` CloudEvents on `POST /v1/events`, each asking the `order-watcher` agent to ship. */
  const eventBatch = (label: string, size: number) => {
    const items = Array.from({ length: size }, (_, index) => ({
      specversion: "1.0",
      id: `evt-${label}-${index}`,
      source: "chaos-suite",
      type: "com.example.chaos.order",
      datacontenttype: "application/json",
      data: { note: `SHIP:E-${label}-${index}` },
    }));
    return record("event", async (target, outcome) => {
      outcome.eventIds = items.map((item) => item.id);
      outcome.orders = items.map((item) => item.data.note.slice("SHIP:".length));
      const response = await fetch(`${target.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${CHAOS_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(items),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      const text = await response.text();
      outcome.status = response.status;
      if (response.status === 202) return;
      let body: { error?: { type?: unknown; code?: unknown; message?: unknown } } | undefined;
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        body = undefined;
      }
      const code = body?.error?.code;
      if (typeof code === "string" && codes.has(code) && typeof body?.error?.type === "string") {
        Object.assign(outcome, {
          result: "typed_error",
          code,
          retryable: isRetryableCode(code as ErrorCode),
          message: String(body.error.message).slice(0, 300),
        });
      } else {
        Object.assign(outcome, { result: "untyped_error", message: text.slice(0, 300) });
      }
    });
  };

  // closed loops: each sends its next request once the last one is answered
  const loop = (kind: Kind, index: number): Promise<void> =>
    (async () => {
      let thread: string | undefined;
      for (let turn = 0; !stopped; turn++) {
        const label = `${kind[0]}${index}-${turn}`;
        if (kind === "plain") {
          // every other turn continues the loop's thread (its context then comes from memory)
          const used = await plainTurn(label, turn % 2 === 1 ? thread : undefined);
          thread = used ?? thread;
        } else if (kind === "tool") await toolTurn(`O-${label}`);
        else if (kind === "stream") await streamTurn(label);
        else await eventBatch(label, 1 + (turn % 3));
        await sleep(options.pauseMs);
      }
    })();

  // the prober: one request of each kind every probeEveryMs, whether or not earlier ones were
  // answered, so the moment the stack serves again after a fault is seen to within that period
  const probes: Promise<unknown>[] = [];
  let tick = 0;
  const prober = setInterval(() => {
    // open loop, but bounded: a stack that is behind is not buried under more probes
    if (stopped || inFlight >= options.maxInFlight) return;
    const label = `p${tick++}`;
    probes.push(plainTurn(label), toolTurn(`O-${label}`), streamTurn(label), eventBatch(label, 1));
  }, options.probeEveryMs);

  const loops: Promise<void>[] = [];
  for (const kind of Object.keys(options.workers) as Kind[])
    for (let index = 0; index < options.workers[kind]; index++) loops.push(loop(kind, index));

  return {
    outcomes,
    inFlight: () => inFlight,
    stop: async () => {
      stopped = true;
      clearInterval(prober);
      await Promise.all([...loops, ...probes]);
    },
  };
}
