import { randomBytes } from "node:crypto";
import { type Bus, connectBus } from "./bus.js";
import { silentLogger } from "./logger.js";

/** A unique subject/stream namespace so tests can run in parallel and re-run. */
export function uniquePrefix(label = "t"): string {
  return `${label.replace(/[^A-Za-z0-9]/g, "")}${randomBytes(5).toString("hex")}`;
}

/** Connects a bus in its own namespace; delete its streams with `cleanupTestBus`. */
export async function createTestBus(options: { prefix?: string; name?: string } = {}): Promise<Bus> {
  return connectBus({
    name: options.name ?? "test",
    url: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
    replicas: Number(process.env.NATS_REPLICAS ?? 1),
    prefix: options.prefix ?? uniquePrefix(),
    logger: silentLogger,
  });
}

/** Deletes every stream of the bus's namespace, then closes it. */
export async function cleanupTestBus(bus: Bus): Promise<void> {
  if (bus.prefix && !bus.nc.isClosed()) {
    const jsm = await bus.jsm();
    for await (const stream of jsm.streams.list()) {
      if (stream.config.name.startsWith(`${bus.prefix}_`)) {
        await jsm.streams.delete(stream.config.name).catch(() => undefined);
      }
    }
  }
  await bus.close();
}
