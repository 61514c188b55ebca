/**
 * The OpenAI request surface at the door, against the orchestrator driver and a stand-in for the
 * model proxy's `model.list` and `model.embed`: request ids, rate-limit headers, CORS, model
 * options carried in the run, models named instead of agents, `/v1/models` and `/v1/embeddings`.
 */
import { Endpoints, RunRequest } from "@agent-runtime/contracts";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;
let client: OpenAI;
const embedded: { model: string | undefined; input: string[]; tenant: string }[] = [];

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

beforeAll(async () => {
  harness = await startHarness(
    {
      defaultAgent: "bare",
      agents: { bare: { tools: [] } },
      limits: { defaults: { requestsPerMinute: 1000 } },
    },
    { CORS_ORIGINS: "https://app.example, https://other.example" },
  );
  client = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: BOOTSTRAP_KEY, maxRetries: 0 });
  const served = { queue: "model-proxy-stand-in", maxInFlight: 10 };
  harness.bus.serve(
    Endpoints.modelList,
    async () => ({
      models: [
        { name: "gpt-4o-mini", provider: "default", capabilities: ["tools", "json", "streaming"] },
        { name: "text-embedding-3-small", provider: "default", capabilities: ["embeddings"] },
      ],
      tiers: ["fast"],
      embeddingModel: "text-embedding-3-small",
    }),
    served,
  );
  harness.bus.serve(
    Endpoints.modelEmbed,
    async (request) => {
      embedded.push({ model: request.model, input: request.input, tenant: request.meta.tenant });
      return {
        embeddings: request.input.map((text) => [text.length, 0.5, -1.25]),
        model: request.model ?? "text-embedding-3-small",
        provider: "default",
        usage: { promptTokens: 7 },
        costUsd: 0,
        cachedCount: 0,
      };
    },
    served,
  );
});

afterAll(async () => {
  await harness?.stop();
});

const hello = { model: "assistant", messages: [{ role: "user" as const, content: "hello" }] };

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${harness.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("request ids", () => {
  it("gives every response an x-request-id (the SDK's requestID), honouring a valid one sent", async () => {
    const { request_id } = await client.chat.completions.create(hello).withResponse();
    expect(request_id).toMatch(/^req_[0-9a-f]{32}$/);
    const own = await post("/v1/chat/completions", hello, { "x-request-id": "my-trace:42" });
    expect(own.headers.get("x-request-id")).toBe("my-trace:42");
    const client2 = await post("/v1/chat/completions", hello, { "x-client-request-id": "client-7" });
    expect(client2.headers.get("x-request-id")).toBe("client-7");
    const invalid = await post("/v1/chat/completions", hello, { "x-request-id": "bad id with spaces" });
    expect(invalid.headers.get("x-request-id")).toMatch(/^req_/);
    // errors and unknown routes too, and streamed answers
    const unauthorized = await fetch(`${harness.url}/v1/models`);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("x-request-id")).toMatch(/^req_/);
    expect((await fetch(`${harness.url}/v1/nowhere`)).headers.get("x-request-id")).toMatch(/^req_/);
    const streamed = await post("/v1/chat/completions", { ...hello, stream: true });
    expect(streamed.headers.get("x-request-id")).toMatch(/^req_/);
    await streamed.text();
  });
});

describe("rate-limit headers", () => {
  it("tells the tightest request rate: limit, remaining and reset", async () => {
    const first = await post("/v1/chat/completions", hello);
    const second = await post("/v1/chat/completions", hello);
    expect(first.headers.get("x-ratelimit-limit-requests")).toBe("1000");
    const remaining = (response: Response) => Number(response.headers.get("x-ratelimit-remaining-requests"));
    expect(remaining(first)).toBeLessThan(1000);
    expect(remaining(second)).toBeLessThan(remaining(first));
    expect(first.headers.get("x-ratelimit-reset-requests")).toMatch(/^(\d+m)?\d+s$/);
  });
});

describe("CORS", () => {
  it("answers a preflight for an allowed origin, and nothing for another", async () => {
    const preflight = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    expect(preflight.headers.get("access-control-allow-headers")).toBe("authorization, content-type");
    const answer = await post("/v1/chat/completions", hello, { origin: "https://other.example" });
    expect(answer.headers.get("access-control-allow-origin")).toBe("https://other.example");
    expect(answer.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const stranger = await fetch(`${harness.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(stranger.status).toBe(204);
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("model options", () => {
  it("carries every option of the request in the run", async () => {
    const { response } = await client.chat.completions
      .create({
        ...hello,
        tools: [weatherTool],
        tool_choice: { type: "function", function: { name: "get_weather" } },
        parallel_tool_calls: false,
        top_p: 0.5,
        seed: 7,
        stop: ["END"],
        presence_penalty: 0.5,
        frequency_penalty: -0.5,
        logit_bias: { "50256": -100 },
        response_format: { type: "json_object" },
        n: 1,
      })
      .withResponse();
    const run = harness.driver.runs.get(response.headers.get("x-run-id")!);
    expect(RunRequest.parse(run?.request).modelOptions).toEqual({
      toolChoice: { type: "function", function: { name: "get_weather" } },
      parallelToolCalls: false,
      topP: 0.5,
      seed: 7,
      stop: ["END"],
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      logitBias: { "50256": -100 },
      responseFormat: { type: "json_object" },
    });
  });

  it("refuses what it cannot honour with a 400 naming the field", async () => {
    const refused = async (extra: Record<string, unknown>, field: string) => {
      const response = await post("/v1/chat/completions", { ...hello, ...extra });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { message: string } };
      expect(body.error.message).toContain(field);
    };
    await refused({ n: 2 }, "n");
    await refused({ logprobs: true }, "logprobs");
    await refused({ top_logprobs: 3 }, "top_logprobs");
    await refused({ functions: [{ name: "f" }] }, "functions");
    await refused({ audio: { voice: "alloy" } }, "audio");
    await refused({ tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice");
    await refused({ tool_choice: "required", model: "bare" }, "tool_choice");
    await refused({ response_format: { type: "xml" } }, "response_format");
  });
});

describe("models", () => {
  it("runs a plain (gateway) turn on a model the proxy serves; an unknown name is a 404", async () => {
    const { data, response } = await client.chat.completions
      .create({ ...hello, model: "gpt-4o-mini" })
      .withResponse();
    expect(data.model).toBe("gpt-4o-mini");
    const run = RunRequest.parse(harness.driver.runs.get(response.headers.get("x-run-id")!)?.request);
    expect(run).toMatchObject({ agent: "@gateway", model: "gpt-4o-mini" });
    // no model: the configured default agent, unpinned
    const { model: _named, ...unnamed } = hello;
    const byDefault = await post("/v1/chat/completions", unnamed);
    expect(byDefault.status).toBe(200);
    const defaultRun = RunRequest.parse(harness.driver.runs.get(byDefault.headers.get("x-run-id")!)?.request);
    expect(defaultRun.agent).toBe("bare");
    expect(defaultRun.model).toBeUndefined();
    const unknown = await post("/v1/chat/completions", { ...hello, model: "gpt-nope" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
    const embedding = await post("/v1/chat/completions", { ...hello, model: "text-embedding-3-small" });
    expect(embedding.status).toBe(400);
  });

  it("lists the agents and the models, and retrieves one", async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(["assistant", "bare", "gpt-4o-mini", "text-embedding-3-small"]);
    const model = await client.models.retrieve("gpt-4o-mini");
    expect(model).toMatchObject({ id: "gpt-4o-mini", object: "model", owned_by: "default" });
    await expect(client.models.retrieve("ghost")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("embeddings", () => {
  it("answers in OpenAI's format, floats or base64, through model.embed", async () => {
    // the SDK asks for base64 and decodes it
    const decoded = await client.embeddings.create({
      input: ["abc", "hello"],
      model: "text-embedding-3-small",
    });
    expect(decoded.object).toBe("list");
    expect(decoded.data.map((entry) => entry.embedding)).toEqual([
      [3, 0.5, -1.25],
      [5, 0.5, -1.25],
    ]);
    expect(decoded.usage).toEqual({ prompt_tokens: 7, total_tokens: 7 });
    const floats = await post("/v1/embeddings", { input: "one text", encoding_format: "float" });
    expect(floats.status).toBe(200);
    expect(((await floats.json()) as { data: { embedding: number[] }[] }).data[0]?.embedding).toEqual([
      8, 0.5, -1.25,
    ]);
    expect(embedded.at(-1)).toEqual({
      model: "text-embedding-3-small",
      input: ["one text"],
      tenant: "default",
    });
    const notEmbedding = await post("/v1/embeddings", { input: "x", model: "gpt-4o-mini" });
    expect(notEmbedding.status).toBe(400);
    const unknown = await post("/v1/embeddings", { input: "x", model: "ghost" });
    expect(unknown.status).toBe(404);
  });
});
