import { request as httpRequest } from "node:http";
import { getTracer, SpanKind, startTelemetry, type Telemetry } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attributesOf,
  type OtlpReceiver,
  type OtlpSpan,
  startOtlpReceiver,
} from "../support/otlp-receiver.js";
import { type Stack, startStack } from "../support/stack.js";

const API_KEY = "sk-e2e-traces-key";
const SERVER = 2;
const CLIENT = 3;

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let fake: FakeOpenAI;
let stack: Stack | undefined;

// Each test file runs in its own worker: this process's OpenTelemetry SDK exports to the receiver.
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  telemetry = await startTelemetry({ service: "traces-e2e" });
  fake = await startFakeOpenAI();
  stack = await startStack({ openaiBaseUrl: fake.url, bootstrapApiKey: API_KEY });
});

afterAll(async () => {
  await stack?.stop();
  await telemetry?.shutdown();
  await fake?.close();
  await receiver?.close();
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
});

/** A POST over node:http (not fetch, which the SDK traces itself): the client's own traceparent goes as is. */
function post(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      url,
      { method: "POST", headers: { "content-type": "application/json", ...headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
      },
    );
    outgoing.on("error", reject);
    outgoing.end(JSON.stringify(body));
  });
}

describe("one trace per turn", () => {
  it("joins the client's trace from the ingress HTTP span to the provider call, with attributes", async () => {
    fake.setHandler((body) => {
      const toolMessage = [...body.messages].reverse().find((message) => message.role === "tool");
      if (!toolMessage) {
        return {
          toolCalls: [{ id: "call_trace_1", name: "calculator", arguments: { expression: "6 * 7" } }],
        };
      }
      return { content: `It is ${String(toolMessage.content)}.` };
    });
    const clientSpan = getTracer("traces-e2e-client").startSpan("client chat", { kind: SpanKind.CLIENT });
    const { traceId, spanId: clientSpanId } = clientSpan.spanContext();
    const response = await post(
      `${stack!.url}/v1/chat/completions`,
      { model: "assistant", messages: [{ role: "user", content: "What is 6 * 7?" }] },
      { authorization: `Bearer ${API_KEY}`, traceparent: `00-${traceId}-${clientSpanId}-01` },
    );
    clientSpan.end();
    expect(response.status).toBe(200);
    expect(response.text).toContain("42");

    // stopped services have ended every span of the turn; shutdown flushes them to the receiver
    await stack!.stop();
    stack = undefined;
    await telemetry.shutdown();

    const spans = receiver.spans();
    const turn = spans.filter((span) => span.traceId === traceId);
    const names = turn.map((span) => span.name);
    const byId = new Map(turn.map((span) => [span.spanId, span]));

    // the root of the turn is ingress's HTTP span, a child of the client's span
    const root = turn.find((span) => span.name === "POST /v1/chat/completions");
    expect(root, `spans of the trace: ${names.join(", ")}`).toBeDefined();
    expect(root!.kind).toBe(SERVER);
    expect(root!.parentSpanId).toBe(clientSpanId);
    expect(attributesOf(root!)).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/v1/chat/completions",
      "http.response.status_code": 200,
      "agent_runtime.tenant": "default", // once the key is known
    });

    // every span of this run is in the client's trace, and every span of the trace leads up to the root
    const runId = attributesOf(turn.find((span) => attributesOf(span)["agent_runtime.run.id"])!)[
      "agent_runtime.run.id"
    ];
    expect(typeof runId).toBe("string");
    const ofRun = spans.filter((span) => attributesOf(span)["agent_runtime.run.id"] === runId);
    expect(ofRun.length).toBeGreaterThan(3);
    expect(ofRun.every((span) => span.traceId === traceId)).toBe(true);
    const ancestors = (span: OtlpSpan): OtlpSpan[] => {
      const parent = span.parentSpanId ? byId.get(span.parentSpanId) : undefined;
      return parent ? [parent, ...ancestors(parent)] : [];
    };
    for (const span of turn.filter((span) => span !== root && span.name !== "client chat")) {
      expect(ancestors(span), `${span.name} leads up to the HTTP span`).toContain(root);
    }

    // the stores are in the trace too: Postgres queries (the key lookup, the run's journal) and Redis
    // commands (rate limits, the thread's hot copy), each under a span of the turn
    const stores = turn.filter((span) => attributesOf(span)["db.system.name"] !== undefined);
    expect(new Set(stores.map((span) => attributesOf(span)["db.system.name"]))).toEqual(
      new Set(["postgresql", "redis"]),
    );
    expect(stores.filter((span) => ancestors(span).includes(root!))).toEqual(stores);
    expect(stores.some((span) => span.parentSpanId === root!.spanId)).toBe(true);

    // span names carry no NATS prefix: one span per service on the way
    const runSpan = turn.find((span) => span.name === "process orchestrator-interactive"); // orchestrator
    expect(runSpan?.parentSpanId).toBe(root!.spanId);
    expect(attributesOf(runSpan!)).toMatchObject({
      "messaging.destination.name": "runs.interactive.default",
      "agent_runtime.tenant": "default",
      "agent_runtime.run.id": runId,
      "gen_ai.agent.name": "assistant",
    });
    expect(names).toContain("model.chat"); // model-proxy
    expect(names).toContain("tool.batch"); // tool-executor
    expect(names).toContain("process memory-turns"); // memory, deriving the thread from the run's turn
    expect(names.every((name) => !/^[A-Za-z0-9_-]+\.(model|tool|memory|runs)\./.test(name))).toBe(true);

    // model calls: the orchestrator's chat span and model-proxy's model.chat span carry GenAI attributes
    const modelCalls = turn.filter((span) => span.name === "model.chat");
    expect(modelCalls).toHaveLength(2);
    for (const span of modelCalls) {
      const attributes = attributesOf(span);
      expect(span.kind).toBe(SERVER);
      expect(attributes).toMatchObject({
        "gen_ai.operation.name": "chat",
        "gen_ai.response.model": expect.stringMatching(/^fake-/),
        "gen_ai.provider.name": expect.any(String),
        "agent_runtime.tenant": "default",
        "agent_runtime.run.id": runId,
        "messaging.destination.name": "model.chat",
      });
      expect(attributes["gen_ai.request.model"]).toEqual(expect.any(String));
      expect(attributes["gen_ai.usage.input_tokens"]).toBeGreaterThan(0);
      expect(attributes["gen_ai.usage.output_tokens"]).toBeGreaterThan(0);
      expect(attributes["agent_runtime.cost.usd"]).toEqual(expect.any(Number));
    }
    const chats = turn.filter((span) => span.name.startsWith("chat"));
    expect(chats).toHaveLength(2);
    expect(chats.every((span) => span.kind === CLIENT)).toBe(true);
    expect(chats.map((span) => attributesOf(span)["agent_runtime.run.step"]).sort()).toEqual([0, 1]);
    expect(attributesOf(chats[0]!)["gen_ai.usage.input_tokens"]).toBeGreaterThan(0);

    // the provider call itself (a CLIENT span of the model proxy's HTTP transport) is a child of model.chat
    const providerCalls = turn.filter(
      (span) => span.kind === CLIENT && attributesOf(span)["url.full"]?.toString().startsWith(fake.url),
    );
    expect(providerCalls.length).toBeGreaterThanOrEqual(2);
    for (const call of providerCalls)
      expect(ancestors(call).map((span) => span.name)).toContain("model.chat");

    // the tool batch names its tool
    const toolSpan = turn.find((span) => span.name.startsWith("execute_tool"));
    expect(attributesOf(toolSpan!)).toMatchObject({ "gen_ai.tool.name": "calculator" });
  });
});
