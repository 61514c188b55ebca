import { describe, expect, it } from "vitest";
import { connectBus, natsServers } from "./bus.js";
import { silentLogger } from "./logger.js";
import { cleanupTestBus, uniquePrefix } from "./testing.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

describe("NATS_URL and NATS_REPLICAS", () => {
  it("reads NATS_URL as one server or a comma-separated list", () => {
    expect(natsServers(undefined)).toEqual(["nats://127.0.0.1:4222"]);
    expect(natsServers("nats://a:4222, nats://b:4222 ,nats://c:4222")).toEqual([
      "nats://a:4222",
      "nats://b:4222",
      "nats://c:4222",
    ]);
    expect(() => natsServers(" , ")).toThrow(RangeError);
  });

  it("connects through a list whose first server is down", async () => {
    const bus = await connectBus({
      name: "list",
      url: `nats://127.0.0.1:1,${url}`,
      prefix: uniquePrefix("list"),
      logger: silentLogger,
    });
    try {
      await bus.ensureStreams(["MEMORY_JOBS"]);
      const info = await (await bus.jsm()).streams.info(bus.streamName("MEMORY_JOBS"));
      expect(info.config.num_replicas).toBe(1);
    } finally {
      await cleanupTestBus(bus);
    }
  });

  it("refuses replica counts out of range", async () => {
    await expect(connectBus({ name: "r", url, replicas: 0, logger: silentLogger })).rejects.toThrow(
      RangeError,
    );
  });

  it("says what to set when a single server is asked for replicated streams", async () => {
    const bus = await connectBus({
      name: "r3",
      url,
      replicas: 3,
      prefix: uniquePrefix("r3"),
      logger: silentLogger,
    });
    try {
      await expect(bus.ensureStreams(["MEMORY_JOBS"])).rejects.toThrow(/NATS_REPLICAS=1/);
    } finally {
      await cleanupTestBus(bus);
    }
  });
});
