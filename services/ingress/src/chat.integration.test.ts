/**
 * POST /v1/chat/completions against the orchestrator driver (the NATS side of the
 * contract), with the official openai client and plain HTTP.
 */
import { RunRequest } from "@agent-runtime/contracts";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, parseSse, startHarness, until } from "./test-support/harness.js";
import { lastUserText, sleep } from "./test-support/orchestrator-driver.js";

let harness: Harness;
let client: OpenAI;
let soloKey: string;

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

beforeAll(async () => {
  harness = await startHarness(
    { limits: { tenants: { solo: { concurrentRuns: 1 } } } },
    { RUN_TIMEOUT_MS: "1500" },
  );
  client = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: BOOTSTRAP_KEY, maxRetries: 0 });
  soloKey = await harness.key("solo");
  harness.driver.setScript(async (run) => {
    const text = lastUserText(run.request);
    run.emit({ type: "run-started", agent: run.request.agent, attempt: 1 });
    if (text === "call a tool") {
      if (run.request.stream) {
        run.emit({ type: "delta", step: 0, toolCalls: [{ index: 0, id: "call_1", name: "get_weather" }] });
        run.emit({ type: "delta", step: 0, toolCalls: [{ index: 0, arguments: '{"city":' }] });
        run.emit({ type: "delta", step: 0, toolCalls: [{ index: 0, arguments: '"Oslo"}' }] });
      }
      run.finish({
        finishReason: "tool_calls",
        output: {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
            },
          ],
        },
      });
      return;
    }
    if (text.startsWith("fail ")) {
      const code = text.slice(5) as "overloaded" | "internal" | "guardrail_blocked";
      run.finish({
        status: "failed",
        error: {
          code,
          message: `the run failed: ${code}`,
          retryable: code === "overloaded",
          retryAfterMs: 2000,
        },
      });
      return;
    }
    if (text === "over budget") {
      run.finish({
        status: "budget_exceeded",
        error: { code: "budget_exceeded", message: "cost budget of $0.01 exceeded", retryable: false },
      });
      return;
    }
    if (text === "break after output") {
      run.emit({ type: "delta", step: 0, content: "partial", offset: 0 });
      run.finish({
        status: "failed",
        error: { code: "upstream", message: "the provider went away", retryable: true },
      });
      return;
    }
    if (text === "taken over") {
      // a first worker streams part of the answer and dies; the next one sends the step again
      // from its start, then leaves the end to the output
      run.emit({ type: "delta", step: 0, content: "I'll ", offset: 0 });
      run.emit({ type: "delta", step: 0, content: "check", offset: 5 });
      run.emit({ type: "delta", step: 0, content: "I'll check.\n\n", offset: 0 });
      run.emit({ type: "delta", step: 1, content: "The total", offset: 0 });
      run.finish({ output: { role: "assistant", content: "I'll check.\n\nThe total is 5." } });
      return;
    }
    if (text === "diverge") {
      run.emit({ type: "delta", step: 0, content: "the total is five", offset: 0 });
      run.finish({ output: { role: "assistant", content: '{"total": 5}' } });
      return;
    }
    if (text === "server tool") {
      // an agent's own tool call must never reach the client
      run.emit({
        type: "delta",
        step: 0,
        toolCalls: [{ index: 0, id: "call_9", name: "calculator", arguments: '{"expression":"2+3"}' }],
      });
      run.emit({ type: "delta", step: 1, content: "5", offset: 0 });
      run.finish({ output: { role: "assistant", content: "5" } });
      return;
    }
    if (text === "never finish") return;
    if (text === "slow") {
      const reason = await Promise.race([run.cancelled, sleep(1200).then(() => undefined)]);
      if (reason !== undefined) return;
    }
    const answer = `echo: ${text}`;
    if (run.request.stream)
      for (const word of answer.split(/(?= )/)) run.emit({ type: "delta", step: 0, content: word });
    run.finish({ output: { role: "assistant", content: answer } });
  });
});

afterAll(async () => {
  await harness?.stop();
});

describe("chat completions", () => {
  it("answers a chat.completion with usage, a thread id and a run id, and sends the whole history as input", async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: "assistant",
        user: "user-7",
        metadata: { purpose: "test" },
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "hello" },
        ],
      })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.model).toBe("assistant");
    expect(data.choices[0]?.message.content).toBe("echo: hello");
    expect(data.choices[0]?.finish_reason).toBe("stop");
    expect(data.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    const runId = response.headers.get("x-run-id")!;
    const threadId = response.headers.get("x-thread-id")!;
    expect(threadId).toMatch(/^thread_/);
    const request = RunRequest.parse(harness.driver.runs.get(runId)?.request);
    expect(request).toMatchObject({
      tenant: "default",
      agent: "assistant",
      threadId,
      userId: "user-7",
      priority: "interactive",
      source: "chat",
      stream: false,
      metadata: { purpose: "test" },
    });
    expect(request.input).toHaveLength(2);
    expect(request.deadline).toBeGreaterThan(Date.now());
  });

  it("continues a server-side thread with x-thread-id: only the new messages are sent", async () => {
    const threadId = "thread_continued-1";
    const response = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${BOOTSTRAP_KEY}`,
        "content-type": "application/json",
        "x-thread-id": threadId,
      },
      body: JSON.stringify({
        messages: [
          { role: "user", content: "first" },
          { role: "assistant", content: "echo: first" },
          { role: "user", content: "second" },
        ],
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-thread-id")).toBe(threadId);
    const run = harness.driver.runs.get(response.headers.get("x-run-id")!)!;
    expect(run.request.threadId).toBe(threadId);
    expect(run.request.input).toEqual([{ role: "user", content: "second" }]);
    const bad = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${BOOTSTRAP_KEY}`,
        "content-type": "application/json",
        "x-thread-id": "a b/c",
      },
      body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }),
    });
    expect(bad.status).toBe(400);
  });

  it("returns client tool calls in OpenAI's format and passes the tools on", async () => {
    const completion = await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "call a tool" }],
      tools: [weatherTool],
    });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toEqual([
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
    ]);
    const run = [...harness.driver.runs.values()].at(-1)!;
    expect(run.request.clientTools).toEqual([weatherTool]);
  });

  it("streams chunks, the finish reason, a usage chunk and [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "stream this please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const finishReasons: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices[0]?.finish_reason) finishReasons.push(chunk.choices[0].finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("echo: stream this please");
    expect(finishReasons).toEqual(["stop"]);
    expect(usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });

    const raw = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "raw" }], stream: true }),
    });
    expect(raw.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(raw.headers.get("x-run-id")).toMatch(/^run_/);
    const frames = parseSse(await raw.text());
    expect(frames.at(-1)?.data).toBe("[DONE]");
    // no usage chunk unless asked for
    expect(frames.some((frame) => frame.data.includes('"usage"'))).toBe(false);
  });

  it("streams tool-call deltas that the openai client assembles", async () => {
    const stream = client.chat.completions.stream({
      model: "assistant",
      messages: [{ role: "user", content: "call a tool" }],
      tools: [weatherTool],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      id: "call_1",
      function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
    });
  });

  it("maps failed runs to OpenAI-shaped errors with the right status", async () => {
    const overloaded = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "fail overloaded" }] })
      .catch((error: unknown) => error);
    expect(overloaded).toBeInstanceOf(OpenAI.InternalServerError);
    expect((overloaded as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((overloaded as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBe("2");
    expect((overloaded as InstanceType<typeof OpenAI.APIError>).type).toBe("service_unavailable_error");

    const blocked = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "fail guardrail_blocked" }] })
      .catch((error: unknown) => error);
    expect(blocked).toBeInstanceOf(OpenAI.PermissionDeniedError);

    const internal = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "fail internal" }] }),
    });
    expect(internal.status).toBe(500);
    const body = (await internal.json()) as {
      error: { type: string; message: string; details: { run_id: string } };
    };
    expect(body.error.type).toBe("server_error");
    expect(body.error.details.run_id).toBe(internal.headers.get("x-run-id"));

    const budget = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "over budget" }] }),
    });
    expect(budget.status).toBe(402);
    expect(((await budget.json()) as { error: { message: string } }).error.message).toMatch(/budget/);
  });

  it("answers a stream that fails before any output with its own status and error body", async () => {
    const raw = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "fail overloaded" }], stream: true }),
    });
    expect(raw.status).toBe(503);
    expect(raw.headers.get("content-type")).toMatch(/application\/json/);
    expect(raw.headers.get("retry-after")).toBe("2");
    expect(raw.headers.get("x-run-id")).toMatch(/^run_/);
    const body = (await raw.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error).toMatchObject({ type: "service_unavailable_error", code: "overloaded" });

    const thrown = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "fail overloaded" }], stream: true })
      .catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(OpenAI.InternalServerError);
    expect((thrown as InstanceType<typeof OpenAI.APIError>).status).toBe(503);

    const late = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "never finish" }], stream: true }),
    });
    expect(late.status).toBe(504);
  });

  it("ends a stream that fails after its first output with an error event, then [DONE]", async () => {
    const raw = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "break after output" }], stream: true }),
    });
    expect(raw.status).toBe(200);
    const frames = parseSse(await raw.text());
    expect(frames.at(-1)?.data).toBe("[DONE]");
    const error = JSON.parse(frames.at(-2)!.data) as { error: { type: string; code: string } };
    expect(error.error).toMatchObject({ code: "upstream" });
    expect(frames.some((frame) => frame.data.includes('"finish_reason":"stop"'))).toBe(false);

    const stream = await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "break after output" }],
      stream: true,
    });
    const thrown = await (async () => {
      for await (const _chunk of stream) {
        // read until the error
      }
    })().catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(OpenAI.APIError);
  });

  it("streams a step sent again only once, and completes the stream from the run's output", async () => {
    const stream = client.chat.completions.stream({
      model: "assistant",
      messages: [{ role: "user", content: "taken over" }],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe("I'll check.\n\nThe total is 5.");
    expect(final.choices[0]?.finish_reason).toBe("stop");
  });

  it("never ends with a false stop: a stream that cannot match the output ends with a typed error", async () => {
    const raw = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "diverge" }], stream: true }),
    });
    const frames = parseSse(await raw.text());
    expect(frames.at(-1)?.data).toBe("[DONE]");
    const error = JSON.parse(frames.at(-2)!.data) as { error: { code: string; message: string } };
    expect(error.error.code).toBe("internal");
    expect(error.error.message).toMatch(/does not match the run's output/);
    expect(frames.some((frame) => frame.data.includes('"finish_reason":"'))).toBe(false);
  });

  it("never streams the agent's own tool calls", async () => {
    const stream = client.chat.completions.stream({
      model: "assistant",
      messages: [{ role: "user", content: "server tool" }],
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    stream.on("chunk", (chunk) => chunks.push(chunk));
    const final = await stream.finalChatCompletion();
    expect(chunks.some((chunk) => chunk.choices[0]?.delta.tool_calls)).toBe(false);
    expect(final.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(final.choices[0]?.message.content).toBe("5");
    expect(final.choices[0]?.finish_reason).toBe("stop");
  });

  it("answers 504 with a clear body when the run does not finish in time", async () => {
    const response = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "never finish" }] }),
    });
    expect(response.status).toBe(504);
    const body = (await response.json()) as {
      error: { type: string; message: string; details: { run_id: string } };
    };
    expect(body.error.message).toMatch(/did not finish within 1500 ms/);
    expect(body.error.details.run_id).toBe(response.headers.get("x-run-id"));
  });

  it("holds a concurrent-run lease per run and gives it back when the client goes away", async () => {
    const solo = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: soloKey, maxRetries: 0 });
    const controller = new AbortController();
    const slow = solo.chat.completions
      .create(
        { model: "assistant", messages: [{ role: "user", content: "slow" }], stream: true },
        {
          signal: controller.signal,
        },
      )
      .then(async (stream) => {
        for await (const _chunk of stream) {
          // until aborted
        }
      })
      .catch((error: unknown) => error);
    await until(() => [...harness.driver.runs.values()].some((run) => run.request.tenant === "solo"));
    const second = await solo.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "hi" }] })
      .catch((error: unknown) => error);
    expect(second).toBeInstanceOf(OpenAI.RateLimitError);
    expect((second as InstanceType<typeof OpenAI.APIError>).message).toMatch(/tenant concurrent runs/);
    expect(
      Number((second as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")),
    ).toBeGreaterThan(0);

    controller.abort();
    await slow;
    // the disconnected client's run is cancelled and its lease returned
    await until(() => harness.driver.cancels.some((cancel) => cancel.reason === "the client disconnected"));
    await until(async () => {
      const again = await fetch(`${harness.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${soloKey}`, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "after" }] }),
      });
      return again.status === 200;
    });
  });

  it("answers 503 with Retry-After when the run queue cannot take the run", async () => {
    // a different prefix with no RUNS stream behind it would be a NATS outage; here the stream
    // is deleted, so the JetStream publish is refused
    const jsm = await harness.bus.jsm();
    await jsm.streams.delete(harness.bus.streamName("RUNS"));
    try {
      const response = await fetch(`${harness.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "lost?" }] }),
      });
      expect(response.status).toBe(503);
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
      const body = (await response.json()) as { error: { type: string } };
      expect(body.error.type).toBe("service_unavailable_error");
    } finally {
      await harness.bus.ensureStreams(["RUNS"]);
    }
  });
});
