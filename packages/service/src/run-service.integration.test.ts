import { ConfigError } from "@agent-runtime/config";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runService } from "./run-service.js";

const env = { STARTUP_WAIT_SECONDS: "5", LOG_LEVEL: "silent", OTEL_SDK_DISABLED: "true" };
const config = () => ({
  natsUrl: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
  databaseUrl: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  logLevel: "silent",
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("runService", () => {
  it("waits for the servers, starts the service with its config and logger, and stops it on shutdown", async () => {
    const seen: string[] = [];
    const running = await runService({
      name: "run-service-test",
      config,
      env,
      start: async (given, deps) => {
        seen.push(`start ${given.logLevel} ${typeof deps.logger.info}`);
        return { stop: async () => void seen.push("stop") };
      },
      signals: [],
      exit: false,
    });
    expect(seen).toEqual(["start silent function"]);
    expect(running.shutdown.isDraining()).toBe(false);
    await running.shutdown.trigger("test");
    expect(running.shutdown.isDraining()).toBe(true);
    expect(seen).toEqual(["start silent function", "stop"]);
  });

  it("says a configuration error in one line and exits 1, before starting anything", async () => {
    const exit = vi.spyOn(process, "exit").mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const start = vi.fn();
    await expect(
      runService({
        name: "run-service-test",
        config: () => {
          throw new ConfigError("invalid environment: PORT: a port");
        },
        env,
        start,
        signals: [],
        exit: false,
      }),
    ).rejects.toThrow("exit 1");
    expect(exit).toHaveBeenCalledWith(1);
    expect(stderr).toHaveBeenCalledWith("invalid environment: PORT: a port\n");
    expect(start).not.toHaveBeenCalled();
  });

  it("waits only for the servers the service names", async () => {
    const exit = vi.spyOn(process, "exit").mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    // Postgres unreachable, but the service waits for NATS only: it starts
    const running = await runService({
      name: "run-service-test",
      config: () => ({ ...config(), databaseUrl: "postgres://postgres@127.0.0.1:1/none" }),
      waitFor: (given) => ({ natsUrl: given.natsUrl }),
      env,
      start: async () => ({ stop: async () => undefined }),
      signals: [],
      exit: false,
    });
    expect(exit).not.toHaveBeenCalled();
    await running.shutdown.trigger("test");
  });
});
