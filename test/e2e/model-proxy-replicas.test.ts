import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import { Endpoints } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { dropIsolation, NATS_URL, newIsolation, REDIS_URL } from "../support/isolation.js";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";

const isolation = newIsolation("mprpm");
let fake: FakeOpenAI;
let replicas: ServiceProcess[] = [];
let client: Bus;
const RPM = 30;

function configFile(config: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), "mp-")), "config.yaml");
  writeFileSync(path, stringify(config));
  return path;
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  const env = {
    NATS_URL,
    REDIS_URL,
    NATS_PREFIX: isolation.natsPrefix,
    REDIS_PREFIX: isolation.redisPrefix,
    OPS_PORT: "0",
    LIMIT_MAX_WAIT_MS: "100",
    AGENT_CONFIG: configFile({
      providers: { limited: { baseUrl: fake.url, apiKey: "k", rpm: RPM } },
      models: { m: { provider: "limited" } },
      tiers: { fast: ["m"] },
    }),
  };
  replicas = await Promise.all([
    startServiceProcess("model-proxy", env),
    startServiceProcess("model-proxy", env),
  ]);
  client = await createTestBus({ prefix: isolation.natsPrefix });
});

afterAll(async () => {
  await client?.close();
  await Promise.all(replicas.map((replica) => replica.stop()));
  await fake?.close();
  await dropIsolation(isolation);
});

describe("model-proxy replicas", () => {
  it("share one provider RPM limit through Redis", async () => {
    // stay inside one minute window
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 200));
    const before = fake.chatRequests().length;
    const results = await Promise.allSettled(
      Array.from({ length: 90 }, (_, index) =>
        client.request(Endpoints.modelChat, {
          meta: { v: 1, tenant: "t", requestId: `rpm-${index}`, deadline: Date.now() + 10_000 },
          messages: [{ role: "user", content: `hello ${index}` }],
          tier: "fast",
        }),
      ),
    );
    const reachedProvider = fake.chatRequests().length - before;
    const ok = results.filter((result) => result.status === "fulfilled").length;
    const limited = results.filter(
      (result) =>
        result.status === "rejected" && (result.reason as { code?: string }).code === "rate_limited",
    ).length;
    expect(reachedProvider).toBeLessThanOrEqual(RPM);
    expect(reachedProvider).toBeGreaterThanOrEqual(RPM - 2);
    expect(ok).toBe(reachedProvider);
    expect(limited).toBe(90 - ok);
    // both replicas were up and in the queue group
    const served = replicas.map((replica) => replica.output());
    expect(served.every((output) => output.includes("model-proxy ready"))).toBe(true);
  });

  it("refuses to start with a bad config file and names the bad path", () => {
    const result = spawnSync(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
      cwd: join(import.meta.dirname, "..", "..", "services", "model-proxy"),
      env: {
        ...process.env,
        NATS_URL,
        AGENT_CONFIG: configFile({
          providers: { p: { baseUrl: "not a url" } },
          models: { m: { provider: "nope" } },
        }),
      },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    const output = result.stdout + result.stderr;
    expect(output).toMatch(/providers\.p\.baseUrl/);
    expect(output).not.toMatch(/at .*\.ts:\d+/);
  });
});
