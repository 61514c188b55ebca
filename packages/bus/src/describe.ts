import type { Bus } from "./bus.js";

/** One line for start-up: the NATS server reached, its version and the subject prefix. */
export function describeNats(bus: Bus): string {
  const info = bus.nc.info;
  const server = bus.nc.getServer();
  const version = info?.version ? `nats-server ${info.version}` : "nats-server";
  const jetstream = info?.jetstream === false ? ", no JetStream" : "";
  return `NATS nats://${server} (${version}${jetstream}, prefix ${bus.prefix ? `"${bus.prefix}"` : "none"})`;
}
