/**
 * Refusal at the door: strings the stores cannot hold are a 400 naming the field on
 * every route (streaming too), and every error Node, the router or the body parser
 * raise is in the documented shape with its own status.
 */
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { HttpErrorBody } from "@agent-runtime/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ limits: { maxBodyBytes: 64 * 1024 } });
});

afterAll(async () => {
  await harness?.stop();
});

const send = (path: string, init: RequestInit & { key?: string | null } = {}) => {
  const headers = new Headers(init.headers);
  if (init.key !== null) headers.set("authorization", `Bearer ${init.key ?? BOOTSTRAP_KEY}`);
  if (init.body !== undefined && !headers.has("content-type"))
    headers.set("content-type", "application/json");
  return fetch(`${harness.url}${path}`, { ...init, headers });
};

/** Reads an error answer: its status, in the documented shape, no stack. */
async function expectError(response: Response, status: number) {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(text).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules/);
  return HttpErrorBody.parse(JSON.parse(text)).error;
}

const hello = [{ role: "user", content: "hi" }];
const event = { specversion: "1.0", id: "e1", source: "door", type: "test" };

describe("strings the stores cannot hold", () => {
  const cases: [string, string, unknown][] = [
    ["/v1/chat/completions", "messages[0].content", { messages: [{ role: "user", content: "\ud800" }] }],
    [
      "/v1/chat/completions",
      "messages[0].content",
      { messages: [{ role: "user", content: "a\u0000" }], stream: true },
    ],
    [
      "/v1/chat/completions",
      "messages[1].content[0].text",
      { messages: [...hello, { role: "user", content: [{ type: "text", text: "x\udc00y" }] }] },
    ],
    ["/v1/chat/completions", "user", { messages: hello, user: "u\u0000" }],
    ["/v1/chat/completions", "user", { messages: hello, user: "\ud83d", stream: true }],
    ["/v1/chat/completions", "metadata.tag", { messages: hello, metadata: { tag: "\udfff" } }],
    [
      "/v1/chat/completions",
      "tools[0].function.description",
      {
        messages: hello,
        tools: [{ type: "function", function: { name: "t", description: "\u0000" } }],
      },
    ],
    ["/v1/runs", "input", { input: "\u0000" }],
    ["/v1/runs", "input", { input: "tail\ud800", stream: true }],
    ["/v1/runs", "input[0].content", { input: [{ role: "user", content: "\ud800" }], wait: true }],
    ["/v1/runs", "user", { input: "ok", user: "\udc00" }],
    ["/v1/runs", "metadata.k", { input: "ok", metadata: { k: "\u0000" } }],
    ["/v1/events", "data.items[1]", { ...event, data: { items: ["fine", "\u0000"] } }],
    ["/v1/events", "[1].subject", [event, { ...event, id: "e2", subject: "\ud800" }]],
    ["/v1/events", "extension", { ...event, extension: "\ud800" }],
  ];

  it.each(cases)("%s refuses %s", async (path, field, body) => {
    const before = harness.driver.runs.size;
    const error = await expectError(await send(path, { method: "POST", body: JSON.stringify(body) }), 400);
    expect(error.type).toBe("invalid_request_error");
    expect(error.param).toBe(field);
    expect(error.message).toContain(field);
    expect(error.message).toMatch(/cannot be stored/);
    expect(harness.driver.runs.size).toBe(before);
  });

  it("refuses them in query strings, path ids and field names too", async () => {
    expect((await expectError(await send("/v1/runs?cursor=%00"), 400)).param).toBe("cursor");
    expect((await expectError(await send("/v1/stats?tenant=%ED%A0%80"), 400)).message).toMatch(
      /malformed URL/,
    );
    await expectError(await send("/v1/runs?limit=%ZZ"), 400);
    expect((await expectError(await send("/v1/runs/%00"), 400)).param).toBe("id");
    const key = await expectError(
      await send("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: hello, metadata: { "k\u0000": "v" } }),
      }),
      400,
    );
    expect(key.message).toMatch(/field name contains a NUL/);
  });

  it("refuses them in CloudEvents binary-mode headers (percent-encoded) too", async () => {
    const binary = (source: string) =>
      send("/v1/events", {
        method: "POST",
        body: JSON.stringify({ a: 1 }),
        headers: {
          "ce-specversion": "1.0",
          "ce-id": `b-${source.length}`,
          "ce-source": source,
          "ce-type": "t",
        },
      });
    expect((await expectError(await binary("door%00"), 400)).param).toBe("source");
    expect((await binary("door%20ok")).status).toBe(202);
  });

  it("still takes text a store can hold: emoji, paired surrogates, control characters", async () => {
    const response = await send("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "😀 \ud83d\ude00 tab\t bell\u0007", user: "ü" }),
    });
    expect(response.status).toBe(202);
  });
});

describe("every error in the documented shape with its own status", () => {
  it("405 with Allow for a known path under another method, 404 for an unknown one", async () => {
    const deleted = await send("/v1/chat/completions", {
      method: "DELETE",
      headers: { "content-type": "application/json" },
    });
    expect(deleted.headers.get("allow")).toBe("POST");
    expect((await expectError(deleted, 405)).code).toBe("method_not_allowed");
    const put = await send("/v1/runs/run_1", { method: "PUT", body: "{}" });
    expect(put.headers.get("allow")).toBe("GET, HEAD");
    await expectError(put, 405);
    await expectError(await send("/v1/chat/completions"), 405);
    await expectError(await send("/v1/nowhere", { method: "DELETE", body: "{" }), 404);
  });

  it("400 for a malformed URL, JSON, an empty JSON body or prototype keys; 415 for other media types", async () => {
    expect((await expectError(await send("/v1/runs/%E0%A4%A"), 400)).message).toMatch(/malformed URL/);
    expect((await expectError(await send(`/v1/runs/${"a".repeat(5000)}`), 414)).code).toBe("uri_too_long");
    const chat = (body: string, contentType = "application/json") =>
      send("/v1/chat/completions", { method: "POST", body, headers: { "content-type": contentType } });
    expect((await expectError(await chat("{nope"), 400)).message).toMatch(/not valid JSON/);
    expect((await expectError(await chat(""), 400)).message).toMatch(/empty/);
    await expectError(await chat('{"__proto__":{"x":1},"messages":[]}'), 400);
    expect((await expectError(await chat("{}", "text/plain"), 415)).code).toBe("unsupported_media_type");
    await expectError(await chat("a=1", "application/x-www-form-urlencoded"), 415);
  });

  it("413 for a body too large, 400 for one nested too deeply, on every body route", async () => {
    for (const path of ["/v1/chat/completions", "/v1/runs", "/v1/events", "/v1/runs/run_1/cancel"]) {
      const large = JSON.stringify({ input: "x".repeat(100 * 1024) });
      expect((await expectError(await send(path, { method: "POST", body: large }), 413)).type).toBe(
        "payload_too_large",
      );
      const deep = `{"data":${"[".repeat(5000)}${"]".repeat(5000)}}`;
      const error = await expectError(await send(path, { method: "POST", body: deep }), 400);
      expect(error.message).toMatch(/nested more than 64 levels/);
    }
  });

  it("431 for headers too large and 400 for a request Node cannot parse, then the server goes on", async () => {
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequest(
        `${harness.url}/v1/models`,
        { headers: { "x-filler": "a".repeat(40_000) } },
        (response) => {
          let body = "";
          response.on("data", (chunk) => {
            body += chunk;
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      request.on("error", reject);
      request.end();
    });
    expect(status.status).toBe(431);
    expect(HttpErrorBody.parse(JSON.parse(status.body)).error.code).toBe("headers_too_large");

    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(harness.ingress.port, "127.0.0.1", () => socket.write("GARBAGE \x00 /\r\n\r\n"));
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString();
      });
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    HttpErrorBody.parse(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)));
    expect((await send("/healthz", { key: null })).status).toBe(200);
  });
});
