import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { RunEvent, RunRequest, Subjects } from "@agent-runtime/contracts";
import { stringify } from "yaml";

/**
 * A side effect to count: an HTTP hook that records each call's body (answering after `delayMs`,
 * so a test can kill a worker while the call is in flight), and the config of a `shipper` agent
 * whose `ship` webhook tool calls it.
 */
export interface ShippingHook {
  server: Server;
  /** Bodies of the calls, in order. */
  calls: string[];
  /** An AGENT_CONFIG file with the `ship` webhook and the `shipper` agent. */
  configPath: string;
  close(): void;
}

export async function startShippingHook(
  options: { delayMs?: number; maxSteps?: number } = {},
): Promise<ShippingHook> {
  const calls: string[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => {
      calls.push(body);
      setTimeout(() => response.end(JSON.stringify({ shipped: true })), options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const configPath = join(mkdtempSync(join(tmpdir(), "shipping-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        webhooks: {
          ship: {
            description: "ships an order (side effect)",
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ship`,
            sideEffects: true,
            timeoutMs: 10_000,
            allowPrivateNetwork: true,
          },
        },
      },
      agents: { shipper: { tools: ["ship"], maxSteps: options.maxSteps ?? 4 } },
    }),
  );
  return { server, calls, configPath, close: () => server.close() };
}

/**
 * Publishes a `shipper` run straight onto the RUNS stream (as ingress would) and collects the
 * events published for it on `run.<id>.events`.
 */
export async function publishShipmentRun(
  bus: Bus,
  options: { source: RunRequest["source"]; threadId?: boolean },
): Promise<{ runId: string; events: RunEvent[] }> {
  const runId = `run_${randomUUID()}`;
  const events: RunEvent[] = [];
  bus.subscribe(Subjects.runEvents(runId), RunEvent, (event) => {
    events.push(event);
  });
  await bus.nc.flush();
  await bus.publishDurable(
    Subjects.runs("interactive", "acme"),
    RunRequest,
    {
      runId,
      tenant: "acme",
      agent: "shipper",
      input: [{ role: "user", content: "ship order 7" }],
      ...(options.threadId ? { threadId: `thread_${runId}` } : {}),
      priority: "interactive",
      createdAt: Date.now(),
      deadline: Date.now() + 60_000,
      source: options.source,
    },
    { msgId: runId },
  );
  return { runId, events };
}
