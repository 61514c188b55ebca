import { type ErrorCode, RuntimeError } from "@agent-runtime/contracts";
import Fastify, { type FastifyReply, type FastifyRequest, type InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleError } from "./http-errors.js";
import { answerUnrouted, registerRequestGuards, routerErrorHandler } from "./request-guards.js";

const app = Fastify();
const silent = { error: () => undefined };

beforeAll(async () => {
  app.setErrorHandler((error: Error, request, reply) => handleError(error, request, reply, silent));
  app.get<{ Params: { code: ErrorCode } }>("/fail/:code", async (request) => {
    throw new RuntimeError(request.params.code, `failed with ${request.params.code}`);
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

describe("HTTP error mapping", () => {
  it("answers 504 deadline_exceeded with the documented error shape", async () => {
    const response = await app.inject({ method: "GET", url: "/fail/deadline_exceeded" });
    expect(response.statusCode).toBe(504);
    expect(response.headers["retry-after"]).toBeUndefined();
    expect(response.json()).toEqual({
      error: {
        type: "deadline_exceeded",
        code: "deadline_exceeded",
        message: "failed with deadline_exceeded",
        param: null,
      },
    });
  });

  it("keeps 504 for an upstream timeout, told apart by its code", async () => {
    const response = await app.inject({ method: "GET", url: "/fail/timeout" });
    expect(response.statusCode).toBe(504);
    expect(response.json()).toMatchObject({ error: { type: "timeout", code: "timeout" } });
  });
});

describe("the door, in process", () => {
  const door = Fastify({ bodyLimit: 200, frameworkErrors: routerErrorHandler(silent) });
  beforeAll(async () => {
    door.removeContentTypeParser("text/plain");
    const guards = registerRequestGuards(door);
    const unrouted = (request: FastifyRequest, reply: FastifyReply) => answerUnrouted(guards, request, reply);
    door.setErrorHandler((error: Error, request, reply) =>
      handleError(error, request, reply, silent, unrouted),
    );
    door.setNotFoundHandler(unrouted);
    door.post("/things", async (request) => ({ got: request.body }));
    door.get("/things/:id", async (request) => request.params);
    await door.ready();
  });
  afterAll(async () => {
    await door.close();
  });

  const json = { "content-type": "application/json" };
  const cases: [string, InjectOptions, number, string][] = [
    [
      "a method the path lacks",
      { method: "DELETE", url: "/things", headers: json },
      405,
      "method_not_allowed",
    ],
    [
      "a media type it does not take",
      { method: "POST", url: "/things", payload: "a", headers: { "content-type": "text/plain" } },
      415,
      "unsupported_media_type",
    ],
    [
      "a body too large",
      { method: "POST", url: "/things", payload: `"${"x".repeat(300)}"`, headers: json },
      413,
      "payload_too_large",
    ],
    ["malformed JSON", { method: "POST", url: "/things", payload: "{", headers: json }, 400, "validation"],
    ["an empty JSON body", { method: "POST", url: "/things", payload: "", headers: json }, 400, "validation"],
    [
      "a NUL in the body",
      { method: "POST", url: "/things", payload: '{"a":["\\u0000"]}', headers: json },
      400,
      "validation",
    ],
    ["a lone surrogate in the query", { method: "GET", url: "/things/1?q=%ED%A0%80" }, 400, "validation"],
    ["a malformed path", { method: "GET", url: "/things/%E0%A4%A" }, 400, "validation"],
    ["no route", { method: "GET", url: "/nothing" }, 404, "not_found"],
  ];
  it.each(cases)("%s", async (_label, request, status, code) => {
    const response = await door.inject(request);
    expect(response.statusCode).toBe(status);
    const body = response.json() as { error: { type: string; code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(0);
    if (status === 405) expect(response.headers.allow).toBe("POST");
  });

  it("names the field of a string the stores cannot hold", async () => {
    const response = await door.inject({
      method: "POST",
      url: "/things",
      payload: '{"a":["ok","\\ud800"]}',
      headers: json,
    });
    expect(response.json()).toMatchObject({
      error: { param: "a[1]", message: expect.stringMatching(/a\[1\]: .*surrogate/) },
    });
  });
});
