import { type ErrorCode, RuntimeError } from "@agent-runtime/contracts";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleError } from "./http-errors.js";

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
