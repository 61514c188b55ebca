import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestBus } from "@agent-runtime/bus/testing";
import { KeyStore } from "@agent-runtime/ingress";
import { createPool } from "@agent-runtime/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DATABASE_URL, dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { freePort, type ServiceProcess, startServiceProcess } from "../support/processes.js";

const KEY = "sk-ingress-replicas";
const isolation = newIsolation("ingrep");
const replicas: { process: ServiceProcess; url: string }[] = [];
let queueKey: string;

beforeAll(async () => {
  const configPath = join(mkdtempSync(join(tmpdir(), "ingrep-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      limits: { tenants: { default: { requestsPerMinute: 10 } }, queues: { interactiveMaxDepth: 3 } },
    }),
  );
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const process = await startServiceProcess("ingress", {
      ...isolatedEnv(isolation),
      PORT: String(port),
      HOST: "127.0.0.1",
      BOOTSTRAP_API_KEY: KEY,
      AGENT_CONFIG: configPath,
    });
    replicas.push({ process, url: `http://127.0.0.1:${port}` });
  }
  const pool = await createPool({ url: DATABASE_URL, schema: isolation.schema, max: 1 });
  queueKey = (await (await KeyStore.open(pool, 0)).create("queue", ["runs"], "queue test")).key;
  await pool.end();
});

afterAll(async () => {
  for (const replica of replicas) await replica.process.stop();
  await dropIsolation(isolation);
});

describe("ingress replicas", () => {
  it("share one tenant rate limit through Redis", async () => {
    // stay inside one minute window
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 200));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const replica = replicas[i % 2]!;
      const response = await fetch(`${replica.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ specversion: "1.0", id: `e-${i}`, source: "test", type: "ping" }),
      });
      statuses.push(response.status);
      if (response.status === 429) expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    expect(statuses.filter((status) => status === 202)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(10);
  });

  it("sheds interactive runs with 429 and Retry-After when the queue is deeper than its bound", async () => {
    // a consumer with nobody pulling: runs pile up as they would behind busy workers
    const bus = await createTestBus({ prefix: isolation.natsPrefix });
    await bus.ensureStreams(["RUNS"]);
    await bus.ensureConsumer("RUNS", {
      durable_name: "orchestrator-interactive",
      filter_subject: "runs.interactive.>",
    });
    const post = () =>
      fetch(`${replicas[0]!.url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${queueKey}`, "content-type": "application/json" },
        body: JSON.stringify({ input: "queued work" }),
      });
    for (let i = 0; i < 3; i++) expect((await post()).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 300)); // depth is sampled every 250 ms
    const shed = await post();
    expect(shed.status).toBe(429);
    expect(Number(shed.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = (await shed.json()) as {
      error: { message: string; details: { limit: string; depth: number } };
    };
    expect(body.error.details.limit).toBe("interactive queue depth");
    expect(body.error.details.depth).toBeGreaterThanOrEqual(3);
    await bus.close();
  });
});
