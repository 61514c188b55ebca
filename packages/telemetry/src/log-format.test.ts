import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { InvalidLogFormatError } from "./errors.js";
import { createLogger, parseLogFormat } from "./logger.js";

function capture(format: "json" | "pretty") {
  let text = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const logger = createLogger({ service: "format-test", level: "info", format, destination });
  return { logger, text: () => text };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("log format", () => {
  it("is pretty on a terminal and JSON otherwise unless LOG_FORMAT says", () => {
    expect(parseLogFormat(undefined, true)).toBe("pretty");
    expect(parseLogFormat(undefined, false)).toBe("json");
    expect(parseLogFormat("", true)).toBe("pretty");
    expect(parseLogFormat("json", true)).toBe("json");
    expect(parseLogFormat(" Pretty ", false)).toBe("pretty");
    expect(() => parseLogFormat("yaml", true)).toThrow(InvalidLogFormatError);
    expect(() => parseLogFormat("yaml", true)).toThrow(/unknown log format "yaml"; expected json or pretty/);
  });

  it("writes one JSON object per line in json", async () => {
    const { logger, text } = capture("json");
    logger.info({ runId: "run_1", costUsd: 0.0012 }, "turn finished");
    await settle();
    const line = JSON.parse(text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: "info",
      service: "format-test",
      runId: "run_1",
      msg: "turn finished",
    });
  });

  it("writes a human line in pretty: level, message and fields, no pid or hostname, secrets redacted", async () => {
    const { logger, text } = capture("pretty");
    logger.info({ runId: "run_1", authorization: "Bearer sk-secret" }, "turn finished");
    await settle();
    const out = text();
    expect(() => JSON.parse(out.trim())).toThrow();
    expect(out).toMatch(/INFO.*turn finished/);
    expect(out).toContain("runId");
    expect(out).toContain("run_1");
    expect(out).not.toContain("sk-secret");
    expect(out).not.toMatch(/\bpid\b|hostname/);
  });
});
