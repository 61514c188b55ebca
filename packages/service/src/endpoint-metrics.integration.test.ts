import { randomUUID } from "node:crypto";
import { Endpoints } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import { describe, expect, it } from "vitest";
import { openServiceContext } from "./context.js";

const logger = createLogger({ service: "endpoint-metrics-test", level: "silent" });

async function metricValue(
  context: { metrics: { registry: { getSingleMetricAsString(name: string): Promise<string> } } },
  name: string,
  label: string,
): Promise<number> {
  const text = await context.metrics.registry.getSingleMetricAsString(name);
  const line = text.split("\n").find((entry) => entry.startsWith(`${name}{`) && entry.includes(label));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("a service's endpoint metrics", () => {
  it("count the requests each endpoint is answering and those it turned away", async () => {
    const id = randomUUID().replaceAll("-", "").slice(0, 12);
    const context = await openServiceContext({
      name: "endpoint-metrics-test",
      config: {
        natsUrl: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
        natsReplicas: 1,
        natsPrefix: `em-${id}`,
        databaseUrl: "postgres://unused",
        databaseSchema: "public",
        redisUrl: "redis://unused",
        redisPrefix: `em:${id}:`,
        opsPort: 0,
      },
      logger,
      postgres: false,
      redis: false,
    });
    try {
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      context.bus.serve(
        Endpoints.toolList,
        async () => {
          await held;
          return { tools: [] };
        },
        { queue: "em", maxInFlight: 1 },
      );
      const first = context.bus.request(Endpoints.toolList, { tenant: "acme" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await metricValue(context, "endpoint_in_flight", 'endpoint="tool.list"')).toBe(1);
      // the endpoint is full: the second request is turned away, counted as shed
      await expect(
        context.bus.request(Endpoints.toolList, { tenant: "acme" }, { timeoutMs: 1000 }),
      ).rejects.toMatchObject({ code: "overloaded" });
      expect(await metricValue(context, "requests_shed_total", 'reason="overloaded"')).toBeGreaterThanOrEqual(
        1,
      );
      release();
      await first;
      expect(await metricValue(context, "endpoint_in_flight", 'endpoint="tool.list"')).toBe(0);
    } finally {
      await context.stop();
    }
  });
});
