import { Writable } from "node:stream";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvalidLogLevelError } from "./errors.js";
import { parseLogLevel } from "./log-level.js";
import { createLogger, redactSecrets } from "./logger.js";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";

function captureLogger(level = "debug") {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: createLogger({ service: "logger-test", level, destination }), lines };
}

/** pino writes to a plain stream asynchronously; wait a turn before reading. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

beforeAll(async () => {
  await startTelemetry({ service: "logger-test" });
});

describe("createLogger", () => {
  const savedLevel = process.env.LOG_LEVEL;
  afterEach(() => {
    if (savedLevel === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = savedLevel;
  });

  it("adds trace_id and span_id inside a span and none outside", async () => {
    const { logger, lines } = captureLogger();
    logger.info("before");
    let ids = { traceId: "", spanId: "" };
    await withSpan("work", async (span) => {
      ids = span.spanContext();
      await settle();
      logger.info("inside");
    });
    logger.info("after");
    await settle();

    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ids.traceId).not.toBe("0".repeat(32));
    expect(lines.map((line) => line.msg)).toEqual(["before", "inside", "after"]);
    expect(lines[0]).not.toHaveProperty("trace_id");
    expect(lines[0]).not.toHaveProperty("span_id");
    expect(lines[1]).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId });
    expect(lines[2]).not.toHaveProperty("trace_id");
  });

  it("writes JSON lines with service, level label and ISO time", async () => {
    const { logger, lines } = captureLogger();
    logger.warn({ runId: "r1" }, "hello");
    await settle();
    expect(lines[0]).toMatchObject({ service: "logger-test", level: "warn", runId: "r1", msg: "hello" });
    expect(typeof lines[0]?.time).toBe("string");
    expect(new Date(lines[0]?.time as string).toString()).not.toBe("Invalid Date");
  });

  it("redacts secrets", async () => {
    const { logger, lines } = captureLogger();
    logger.info(
      {
        apiKey: "sk-top",
        provider: { api_key: "sk-nested", name: "openai" },
        headers: { authorization: "Bearer abc", accept: "json" },
        request: { headers: { authorization: "Bearer def" } },
      },
      "secrets",
    );
    await settle();
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain("sk-top");
    expect(text).not.toContain("sk-nested");
    expect(text).not.toContain("Bearer");
    expect(lines[0]).toMatchObject({
      apiKey: "[redacted]",
      provider: { api_key: "[redacted]", name: "openai" },
      headers: { authorization: "[redacted]", accept: "json" },
    });
  });

  it("redacts secrets two levels down, in any case, without touching the caller's objects", async () => {
    const { logger, lines } = captureLogger();
    const error = Object.assign(new Error("provider refused"), { apiKey: "sk-in-error" });
    const logged = {
      runId: "run_1",
      models: ["m1", "m2"],
      request: { headers: { Authorization: "Bearer ghi", "X-Api-Key": "key-1", accept: "json" } },
      err: error,
    };
    logger.child({ tenant: "t1" }).warn({ ...logged, password: "hunter2" }, "call failed");
    await settle();
    const text = JSON.stringify(lines[0]);
    for (const secret of ["Bearer ghi", "key-1", "sk-in-error", "hunter2"])
      expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({
      runId: "run_1",
      models: ["m1", "m2"],
      tenant: "t1",
      password: "[redacted]",
      request: { headers: { Authorization: "[redacted]", "X-Api-Key": "[redacted]", accept: "json" } },
      err: { message: "provider refused", apiKey: "[redacted]", type: "Error" },
    });
    expect(logged.request.headers.Authorization).toBe("Bearer ghi");
    expect(error.apiKey).toBe("sk-in-error");
  });

  it("hands a line without secrets to pino as it is", () => {
    const flat = { runId: "run_2", tenant: "t", steps: 1, usage: { promptTokens: 3 } };
    expect(redactSecrets(flat)).toBe(flat);
    // a Buffer is passed as it is (walking it would visit every byte)
    const body = Object.assign(Buffer.from("bytes"), { password: "p" });
    const redacted = redactSecrets({ body, password: "p" });
    expect(redacted.body).toBe(body);
    expect(redacted.password).toBe("[redacted]");
    expect(redactSecrets({ a: { b: { c: { password: "deep" } } } })).toEqual({
      a: { b: { c: { password: "deep" } } },
    });
  });

  it("takes the level from the option, then LOG_LEVEL, then info", () => {
    process.env.LOG_LEVEL = "warn";
    expect(createLogger({ service: "x", level: "debug" }).level).toBe("debug");
    expect(createLogger({ service: "x" }).level).toBe("warn");
    delete process.env.LOG_LEVEL;
    expect(createLogger({ service: "x" }).level).toBe("info");
  });
});

describe("parseLogLevel", () => {
  it("normalises known levels and falls back when unset", () => {
    expect(parseLogLevel(" DEBUG ")).toBe("debug");
    expect(parseLogLevel("silent")).toBe("silent");
    expect(parseLogLevel(undefined)).toBe("info");
    expect(parseLogLevel("", "error")).toBe("error");
  });

  it("rejects unknown levels", () => {
    expect(() => parseLogLevel("verbose")).toThrow(InvalidLogLevelError);
    expect(() => parseLogLevel("verbose")).toThrow(/unknown log level "verbose"/);
  });
});
