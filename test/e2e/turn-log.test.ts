/**
 * Every turn leaves one info line: who, which agent and models, tokens, cost, latency and how it
 * ended, with the trace id that joins it to the turn's spans and to the client's `traceparent`.
 */
import { Writable } from "node:stream";
import { startTelemetry } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../support/stack.js";

const API_KEY = "sk-turn-log-key";
const lines: Record<string, unknown>[] = [];
let fake: FakeOpenAI;
let stack: Stack;
let client: OpenAI;

const turnLines = (runId: string) =>
  lines.filter((line) => line.msg === "turn finished" && line.runId === runId);

async function waitForTurnLine(runId: string): Promise<Record<string, unknown>[]> {
  const until = Date.now() + 5000;
  while (turnLines(runId).length === 0 && Date.now() < until)
    await new Promise((resolve) => setTimeout(resolve, 20));
  // a second line (a duplicate) would come right after the first
  await new Promise((resolve) => setTimeout(resolve, 200));
  return turnLines(runId);
}

beforeAll(async () => {
  // as every service's start does: trace context on (spans kept unless exported), so lines carry trace ids
  await startTelemetry({ service: "turn-log-test" });
  fake = await startFakeOpenAI();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  stack = await startStack({ openaiBaseUrl: fake.url, bootstrapApiKey: API_KEY, logs: { destination } });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
});

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

describe("the turn's log line", () => {
  it("says once, at info, who asked, which agent and models answered, tokens, cost, latency and outcome", async () => {
    fake.setHandler((body) => {
      const tool = body.messages.find((message) => message.role === "tool");
      if (!tool) return { toolCalls: [{ name: "calculator", arguments: { expression: "6 * 7" } }] };
      return { content: `It is ${String(tool.content)}.` };
    });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const { response } = await client.chat.completions
      .create(
        { model: "assistant", user: "ann", messages: [{ role: "user", content: "what is 6 * 7?" }] },
        { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
      )
      .withResponse();
    const runId = response.headers.get("x-run-id");
    expect(runId).toBeTruthy();
    const found = await waitForTurnLine(runId!);
    expect(found).toHaveLength(1);
    const line = found[0]!;
    expect(line).toMatchObject({
      level: "info",
      service: "orchestrator",
      agent: "assistant",
      userId: "ann",
      lane: "interactive",
      status: "completed",
      steps: 2,
      trace_id: traceId,
    });
    expect(line.tenant).toEqual(expect.any(String));
    expect(line.models).toEqual(expect.arrayContaining([expect.stringMatching(/^fake-/)]));
    expect(line.promptTokens).toBeGreaterThan(0);
    expect(line.completionTokens).toBeGreaterThan(0);
    expect(line.costUsd).toEqual(expect.any(Number));
    expect(line.latencyMs).toBeGreaterThanOrEqual(0);
    expect(line.error).toBeUndefined();
  });

  it("names the error code of a turn that failed", async () => {
    fake.setHandler(() => ({
      fault: {
        kind: "status",
        status: 400,
        body: { error: { message: "bad request", type: "invalid_request_error" } },
      },
    }));
    const failed = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "this one fails" }] })
      .withResponse()
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.APIError>);
    expect(failed).toBeInstanceOf(OpenAI.APIError);
    const runId = (failed as InstanceType<typeof OpenAI.APIError>).headers?.get("x-run-id");
    expect(runId).toBeTruthy();
    const found = await waitForTurnLine(runId!);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: "info", status: "failed", error: expect.any(String) });
  });
});
