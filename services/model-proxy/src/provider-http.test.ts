import http from "node:http";
import type { AddressInfo } from "node:net";
import zlib from "node:zlib";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { providerFetch } from "./provider-http.js";

const completion = (content: string) => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "m",
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

/** A provider whose behaviour each test picks by the model name it asks for. */
let server: http.Server;
let baseURL: string;
const seen: { headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    request.on("end", () => {
      seen.push({ headers: request.headers, body });
      const model = (JSON.parse(body) as { model: string }).model;
      switch (model) {
        case "gzip": {
          const zipped = zlib.gzipSync(JSON.stringify(completion("zipped ü")));
          response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
          response.end(zipped);
          return;
        }
        case "stream": {
          response.writeHead(200, { "content-type": "text/event-stream" });
          for (const piece of ["a", "b", "c"]) {
            const chunk = {
              id: "c",
              object: "chat.completion.chunk",
              created: 1,
              model: "m",
              choices: [{ index: 0, delta: { content: piece }, finish_reason: null }],
            };
            response.write(`data: ${JSON.stringify(chunk)}\n\n`);
          }
          response.end("data: [DONE]\n\n");
          return;
        }
        case "cut": {
          // promises more than it sends, then drops the connection
          response.writeHead(200, { "content-type": "application/json", "content-length": "500" });
          response.write('{"id":"chatcmpl-1","obj');
          setTimeout(() => response.socket?.destroy(), 20);
          return;
        }
        case "slow":
          setTimeout(() => {
            if (!response.writableEnded) {
              response.writeHead(200, { "content-type": "application/json" });
              response.end(JSON.stringify(completion("late")));
            }
          }, 2000);
          return;
        case "teapot":
          response.writeHead(429, { "content-type": "application/json", "retry-after": "7" });
          response.end(JSON.stringify({ error: { message: "slow down", type: "rate_limit" } }));
          return;
        default:
          response.writeHead(200, { "content-type": "application/json", "x-request-id": "req_42" });
          response.end(JSON.stringify(completion("hello")));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const client = () => new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0, fetch: providerFetch });
const ask = (model: string, options?: OpenAI.RequestOptions) =>
  client().chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }, options);

describe("the provider transport under the openai client", () => {
  it("sends the body with its length and reads a JSON reply with its headers", async () => {
    const { data, response, request_id } = await ask("plain").withResponse();
    expect(data.choices[0]?.message.content).toBe("hello");
    expect(response.headers.get("x-request-id")).toBe("req_42");
    expect(request_id).toBe("req_42");
    const sent = seen.at(-1)!;
    expect(sent.headers.authorization).toBe("Bearer sk-test");
    expect(sent.headers["content-length"]).toBe(String(Buffer.byteLength(sent.body)));
    expect(sent.headers["transfer-encoding"]).toBeUndefined();
  });

  it("decodes a compressed reply", async () => {
    const reply = await ask("gzip");
    expect(reply.choices[0]?.message.content).toBe("zipped ü");
  });

  it("streams server-sent events as they come", async () => {
    const stream = await client().chat.completions.create({
      model: "stream",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    const pieces: string[] = [];
    for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta.content ?? "");
    expect(pieces.join("")).toBe("abc");
  });

  it("turns a provider error status into the SDK's error with its headers", async () => {
    const error = await ask("teapot").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBe("7");
  });

  it("fails a reply cut short instead of returning part of it", async () => {
    const error = await ask("cut").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it("stops at the caller's abort and at the client's timeout", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(ask("slow", { signal: controller.signal })).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    await expect(ask("slow", { timeout: 100 })).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it("refuses nothing the SDK may send: a non-text body goes through the global fetch", async () => {
    const response = await providerFetch(`${baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Blob([JSON.stringify({ model: "plain" })]),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as ReturnType<typeof completion>).choices[0]?.message.content).toBe(
      "hello",
    );
  });
});
