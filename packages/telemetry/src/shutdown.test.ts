import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { installShutdown } from "./shutdown.js";

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: createLogger({ service: "shutdown-test", level: "info", destination }), lines };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("installShutdown", () => {
  it("runs the steps in order, once, and reports draining", async () => {
    const { logger, lines } = captureLogger();
    const order: string[] = [];
    const shutdown = installShutdown({
      logger,
      exit: false,
      signals: [],
      steps: [
        { name: "intake", run: async () => void order.push("intake") },
        {
          name: "drain",
          run: async () => {
            expect(shutdown.isDraining()).toBe(true);
            await new Promise((resolve) => setTimeout(resolve, 10));
            order.push("drain");
          },
        },
        { name: "close", run: async () => void order.push("close") },
      ],
    });
    expect(shutdown.isDraining()).toBe(false);
    await Promise.all([shutdown.trigger("test"), shutdown.trigger("again")]);
    await settle();
    expect(order).toEqual(["intake", "drain", "close"]);
    expect(shutdown.isDraining()).toBe(true);
    expect(lines.filter((line) => line.msg === "shutdown step done").map((line) => line.step)).toEqual([
      "intake",
      "drain",
      "close",
    ]);
    expect(lines.at(-1)).toMatchObject({ msg: "shutdown complete", clean: true });
  });

  it("keeps going after a failing step and reports it", async () => {
    const { logger, lines } = captureLogger();
    const order: string[] = [];
    const shutdown = installShutdown({
      logger,
      exit: false,
      signals: [],
      steps: [
        {
          name: "broken",
          run: async () => {
            throw new Error("socket closed");
          },
        },
        { name: "close", run: async () => void order.push("close") },
      ],
    });
    await shutdown.trigger("test");
    await settle();
    expect(order).toEqual(["close"]);
    expect(lines).toContainEqual(expect.objectContaining({ msg: "shutdown step failed", step: "broken" }));
    expect(lines.at(-1)).toMatchObject({ msg: "shutdown complete", clean: false });
  });

  it("gives up after timeoutMs", async () => {
    const { logger, lines } = captureLogger();
    const order: string[] = [];
    const shutdown = installShutdown({
      logger,
      exit: false,
      signals: [],
      timeoutMs: 50,
      steps: [
        { name: "stuck", run: () => new Promise<void>(() => undefined) },
        { name: "never", run: async () => void order.push("never") },
      ],
    });
    await shutdown.trigger("test");
    await settle();
    expect(order).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ msg: "shutdown took too long; exiting", timeoutMs: 50 });
  });

  it("starts on a signal", async () => {
    const { logger } = captureLogger();
    const before = process.listenerCount("SIGUSR2");
    let ran = false;
    const shutdown = installShutdown({
      logger,
      exit: false,
      signals: ["SIGUSR2"],
      steps: [
        {
          name: "mark",
          run: async () => {
            ran = true;
          },
        },
      ],
    });
    expect(process.listenerCount("SIGUSR2")).toBe(before + 1);
    process.emit("SIGUSR2", "SIGUSR2");
    expect(shutdown.isDraining()).toBe(true);
    await shutdown.trigger("ignored: already running");
    expect(ran).toBe(true);
    expect(process.listenerCount("SIGUSR2")).toBe(before);
  });
});
