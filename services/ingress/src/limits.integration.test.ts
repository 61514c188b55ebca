/**
 * Limits: request rates and concurrent-run leases shared through Redis (and local
 * when Redis is down), two ingress processes sharing one limit, token quotas and
 * stats from the USAGE stream, key revocation.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ModelUsageRecord, RuntimeError, Subjects } from "@agent-runtime/contracts";
import { createRedis } from "@agent-runtime/stores";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Limiter } from "./rate-limits.js";
import {
  BOOTSTRAP_KEY,
  dropIsolation,
  type Harness,
  ingressEnv,
  newIsolation,
  REDIS_URL,
  startHarness,
  startIngressIn,
  until,
} from "./test-support/harness.js";

const serviceRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
    server.on("error", reject);
  });
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as RuntimeError,
  );

describe("limiter", () => {
  const prefix = `limtest${randomUUID().slice(0, 8)}:`;
  const redis = createRedis(REDIS_URL);
  const down = createRedis("redis://127.0.0.1:1");
  afterAll(async () => {
    await dropIsolation({ prefix: "unused", schema: "unused_schema", redisPrefix: prefix });
    redis.disconnect();
    down.disconnect();
  });

  it("shares request rates between replicas and names the limit that was reached", async () => {
    await until(() => redis.status === "ready");
    const first = new Limiter(redis, prefix);
    const second = new Limiter(redis, prefix);
    const request = {
      tenant: "acme",
      userId: "u1",
      limits: { requestsPerMinute: 5, userRequestsPerMinute: 3 },
      global: {},
    };
    for (let index = 0; index < 3; index++) await (index % 2 ? first : second).admit(request);
    const user = await rejection(first.admit(request));
    expect(user).toBeInstanceOf(RuntimeError);
    expect(user?.code).toBe("rate_limited");
    expect(user?.message).toMatch(/user requests per minute \(3\)/);
    expect(user?.retryAfterMs).toBeGreaterThan(0);
    // a refused request takes nothing: the tenant still has room for two other users
    await second.admit({ ...request, userId: "u2" });
    await first.admit({ ...request, userId: "u3" });
    const tenant = await rejection(second.admit({ ...request, userId: "u4" }));
    expect(tenant?.message).toMatch(/tenant requests per minute \(5\)/);
  });

  it("leases concurrent runs across replicas; a lease that is never given back expires", async () => {
    const first = new Limiter(redis, prefix);
    const second = new Limiter(redis, prefix);
    const request = { tenant: "lease", userId: undefined, limits: {}, global: { concurrentRuns: 2 } };
    const releaseA = await first.admit({ ...request, runLeaseMs: 60_000 });
    await second.admit({ ...request, runLeaseMs: 300 }); // its replica "crashes": never released
    const full = await rejection(first.admit({ ...request, runLeaseMs: 60_000 }));
    expect(full?.message).toMatch(/global concurrent runs \(2\)/);
    releaseA();
    await until(
      async () => (await rejection(second.admit({ ...request, runLeaseMs: 60_000 }))) === undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 350));
    // the crashed replica's lease has expired, so one more fits
    await first.admit({ ...request, runLeaseMs: 60_000 });
    expect(await rejection(first.admit({ ...request, runLeaseMs: 60_000 }))).toBeInstanceOf(RuntimeError);
  });

  it("slides the window: the previous minute counts by the share of it still inside the window", async () => {
    for (const [label, client] of [
      ["redis", redis],
      ["local", down],
    ] as const) {
      const limiter = new Limiter(client, `${prefix}slide-${label}:`);
      const minute = Math.floor(Date.now() / 60_000) * 60_000 + 120_000;
      const request = { tenant: "slide", userId: undefined, limits: { requestsPerMinute: 10 }, global: {} };
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        vi.setSystemTime(minute + 54_000); // 90% into a minute
        for (let index = 0; index < 10; index++) await limiter.admit(request);
        expect((await rejection(limiter.admit(request)))?.code, label).toBe("rate_limited");
        // 6 s into the next minute, 90% of the previous minute's 10 requests still count: room for one
        vi.setSystemTime(minute + 66_000);
        await limiter.admit(request);
        const refused = await rejection(limiter.admit(request));
        expect(refused?.code, label).toBe("rate_limited");
        expect(refused?.retryAfterMs, label).toBeGreaterThanOrEqual(1000);
        // late in that minute the previous one hardly counts
        vi.setSystemTime(minute + 114_000);
        for (let index = 0; index < 8; index++) await limiter.admit(request);
      } finally {
        vi.useRealTimers();
      }
    }
  });

  it("falls back to per-replica limits when Redis is down", async () => {
    const local = new Limiter(down, prefix);
    const request = {
      tenant: "offline",
      userId: undefined,
      limits: { requestsPerMinute: 2, concurrentRuns: 1 },
      global: {},
    };
    const release = await local.admit({ ...request, runLeaseMs: 10_000 });
    const busy = await rejection(local.admit({ ...request, runLeaseMs: 10_000 }));
    expect(busy?.message).toMatch(/tenant concurrent runs/);
    release();
    await local.admit({ ...request });
    expect((await rejection(local.admit(request)))?.message).toMatch(/tenant requests per minute/);
  });
});

describe("ingress with Redis down", () => {
  it("keeps serving with local limits", async () => {
    const isolation = newIsolation("ingnored");
    const ingress = await startIngressIn(
      ingressEnv(
        isolation,
        { limits: { tenants: { default: { requestsPerMinute: 3 } } } },
        { REDIS_URL: "redis://127.0.0.1:1" },
      ),
    );
    try {
      const statuses: number[] = [];
      for (let index = 0; index < 5; index++) {
        const response = await fetch(`${ingress.url}/v1/models`, {
          headers: { authorization: `Bearer ${BOOTSTRAP_KEY}` },
        });
        statuses.push(response.status);
      }
      // /v1/models is not rate limited; events are
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      const events: number[] = [];
      for (let index = 0; index < 4; index++) {
        const response = await fetch(`${ingress.url}/v1/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ specversion: "1.0", id: `e${index}`, source: "test", type: "ping" }),
        });
        events.push(response.status);
      }
      expect(events).toEqual([202, 202, 202, 429]);
      expect((await fetch(`${ingress.url}/readyz`)).status).toBe(200);
    } finally {
      await ingress.stop();
      await dropIsolation(isolation);
    }
  });
});

describe("two ingress processes", () => {
  const isolation = newIsolation("ingproc");
  const processes: { child: ChildProcess; url: string; output: () => string }[] = [];

  beforeAll(async () => {
    const env = ingressEnv(isolation, { limits: { tenants: { default: { requestsPerMinute: 8 } } } });
    for (let index = 0; index < 2; index++) {
      const port = await freePort();
      const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
        cwd: serviceRoot,
        env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      processes.push({ child, url: `http://127.0.0.1:${port}`, output: () => output });
    }
    for (const entry of processes) await until(() => entry.output().includes("ingress ready"), 30_000);
  }, 60_000);

  afterAll(async () => {
    for (const entry of processes) if (entry.child.exitCode === null) entry.child.kill("SIGKILL");
    await dropIsolation(isolation);
  });

  it("share one tenant rate limit through Redis, then drain on SIGTERM", async () => {
    // stay inside one minute window
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 200));
    const statuses: number[] = [];
    for (let index = 0; index < 16; index++) {
      const response = await fetch(`${processes[index % 2]!.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ specversion: "1.0", id: `p${index}`, source: "test", type: "ping" }),
      });
      statuses.push(response.status);
      if (response.status === 429) {
        expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
        const body = (await response.json()) as { error: { details: { limit: string } } };
        expect(body.error.details.limit).toBe("tenant requests per minute");
      }
    }
    expect(statuses.filter((status) => status === 202)).toHaveLength(8);
    expect(statuses.filter((status) => status === 429)).toHaveLength(8);
    const exits = processes.map(
      (entry) => new Promise<number | null>((resolve) => entry.child.once("exit", (code) => resolve(code))),
    );
    for (const entry of processes) entry.child.kill("SIGTERM");
    expect(await Promise.all(exits)).toEqual([0, 0]);
  }, 60_000);
});

describe("quotas, stats and keys", () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness(
      {
        limits: {
          tenants: {
            thrifty: { tokensPerDay: 100 },
            family: { userTokensPerDay: 50 },
            metered: { tokensPerDay: 1000, userTokensPerDay: 300, requestsPerMinute: 1000 },
            unmetered: { requestsPerMinute: 1000 },
          },
        },
      },
      { KEY_CACHE_MS: "200" },
    );
  });
  afterAll(async () => {
    await harness?.stop();
  });

  const usageRecord = (tenant: string, id: string, tokens: number, runId: string): ModelUsageRecord => ({
    v: 1,
    id,
    ts: Date.now(),
    tenant,
    runId,
    agent: "assistant",
    requestId: randomUUID(),
    kind: "chat",
    route: "default",
    routeReason: "test",
    tier: "fast",
    model: "fake-fast",
    provider: "fake",
    usage: { promptTokens: tokens, completionTokens: 0, cachedTokens: 0, totalTokens: tokens },
    usageEstimated: false,
    costUsd: 0.01,
    latencyMs: 20,
    retries: 0,
    fallbacks: 0,
    cached: false,
    status: "ok",
  });

  it("folds each usage record in once and enforces tokens per day from them", async () => {
    const key = await harness.key("thrifty");
    const ask = () =>
      fetch(`${harness.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ specversion: "1.0", id: randomUUID(), source: "test", type: "ping" }),
      });
    expect((await ask()).status).toBe(202);
    const record = usageRecord("thrifty", `u-${randomUUID()}`, 60, "run_a");
    // the same record twice (a redelivery) and a second one of the same run
    await harness.bus.publishDurable(Subjects.usageModel, ModelUsageRecord, record);
    await harness.bus.publishDurable(Subjects.usageModel, ModelUsageRecord, record);
    await harness.bus.publishDurable(
      Subjects.usageModel,
      ModelUsageRecord,
      usageRecord("thrifty", `u-${randomUUID()}`, 50, "run_a"),
    );
    const stats = async () =>
      (await (
        await fetch(`${harness.url}/v1/stats`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as {
        tenant: string;
        totals: { runs: number; calls: number; tokens: number; cost_usd: number };
      };
    await until(async () => (await stats()).totals.calls === 2);
    expect((await stats()).totals).toMatchObject({ runs: 1, calls: 2, tokens: 110 });
    // totals are re-read every 5 s
    await until(async () => (await ask()).status === 429, 8000);
    const over = await ask();
    const body = (await over.json()) as { error: { message: string; details: { limit: string } } };
    expect(body.error.details.limit).toBe("tokens per day");
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(over.headers.get("x-ratelimit-limit-tokens")).toBe("100");
    expect(over.headers.get("x-ratelimit-remaining-tokens")).toBe("0");

    // an admin key may read every tenant; others only their own
    const all = (await (
      await fetch(`${harness.url}/v1/stats?tenant=*`, {
        headers: { authorization: `Bearer ${BOOTSTRAP_KEY}` },
      })
    ).json()) as { items: { tenant: string }[] };
    expect(all.items.map((item) => item.tenant)).toContain("thrifty");
    const denied = await fetch(`${harness.url}/v1/stats?tenant=default`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(denied.status).toBe(403);
  }, 20_000);

  it("enforces a per-user token quota inside a tenant", async () => {
    const key = await harness.key("family");
    const run = (user: string) =>
      fetch(`${harness.url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ input: "hello", user }),
      });
    expect((await run("ann")).status).toBe(202);
    await harness.bus.publishDurable(Subjects.usageModel, ModelUsageRecord, {
      ...usageRecord("family", `u-${randomUUID()}`, 60, "run_b"),
      userId: "ann",
    });
    await until(async () => (await run("ann")).status === 429, 8000);
    const over = await run("ann");
    const body = (await over.json()) as { error: { details: { limit: string; used: number } } };
    expect(body.error.details).toMatchObject({ limit: "user tokens per day", used: 60 });
    expect((await run("bob")).status).toBe(202);
  }, 20_000);

  it("tells the tightest token quota in x-ratelimit-*-tokens, less as usage is folded in, 0 on the 429", async () => {
    const key = await harness.key("metered");
    const chat = (body: object = {}) =>
      fetch(`${harness.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "assistant", messages: [{ role: "user", content: "hello" }], ...body }),
      });
    const event = () =>
      fetch(`${harness.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ specversion: "1.0", id: randomUUID(), source: "test", type: "ping" }),
      });
    const tokens = (response: Response) => ({
      limit: response.headers.get("x-ratelimit-limit-tokens"),
      remaining: response.headers.get("x-ratelimit-remaining-tokens"),
      reset: response.headers.get("x-ratelimit-reset-tokens"),
    });
    const secondsOf = (duration: string | null) => {
      const parts = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(duration ?? "");
      if (!parts) throw new Error(`not a duration: ${duration}`);
      return Number(parts[1] ?? 0) * 3600 + Number(parts[2] ?? 0) * 60 + Number(parts[3]);
    };
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    const secondsToMidnight = (midnight.getTime() - Date.now()) / 1000;

    // nothing used yet: the tenant's 1000 a day, or a user's 300 when the request names one
    const plain = await chat();
    expect(plain.status).toBe(200);
    await plain.text();
    expect(tokens(plain)).toMatchObject({ limit: "1000", remaining: "1000" });
    const reset = secondsOf(tokens(plain).reset);
    expect(reset).toBeGreaterThan(secondsToMidnight - 60);
    expect(reset).toBeLessThanOrEqual(secondsToMidnight + 1);
    expect(plain.headers.get("x-ratelimit-limit-requests")).toBe("1000");
    const ann = await chat({ user: "ann" });
    await ann.text();
    expect(tokens(ann)).toMatchObject({ limit: "300", remaining: "300" });
    const streamed = await chat({ stream: true });
    expect(streamed.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(tokens(streamed)).toMatchObject({ limit: "1000", remaining: "1000" });
    expect(await streamed.text()).toContain("[DONE]");
    const client = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: key, maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "hello" }] })
      .withResponse();
    expect(response.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
    expect(response.headers.get("x-ratelimit-remaining-tokens")).toBe("1000");
    const run = await fetch(`${harness.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ input: "hello" }),
    });
    expect(run.status).toBe(202);
    expect(tokens(run)).toMatchObject({ limit: "1000", remaining: "1000" });
    const accepted = await event();
    expect(accepted.status).toBe(202);
    expect(tokens(accepted)).toMatchObject({ limit: "1000", remaining: "1000" });

    // usage is folded in from the USAGE stream and the totals re-read every 5 s: poll for the new figures
    await harness.bus.publishDurable(Subjects.usageModel, ModelUsageRecord, {
      ...usageRecord("metered", `u-${randomUUID()}`, 120, "run_m"),
      userId: "ann",
    });
    // polled spaced out, so the requests stay well under the tenant's 1000 a minute
    const spacedEvent = async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      return event();
    };
    await until(async () => tokens(await spacedEvent()).remaining === "880", 8000);
    // the user's totals are cached apart from the tenant's, so they may refresh a little later
    await until(async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const annAfter = await chat({ user: "ann" });
      await annAfter.text();
      expect(tokens(annAfter).limit).toBe("300");
      return tokens(annAfter).remaining === "180";
    }, 8000);

    // another user spends the rest of the tenant's day: the tenant's quota is now the tightest, at 0
    await harness.bus.publishDurable(Subjects.usageModel, ModelUsageRecord, {
      ...usageRecord("metered", `u-${randomUUID()}`, 900, "run_n"),
      userId: "bob",
    });
    await until(async () => (await spacedEvent()).status === 429, 8000);
    for (const refused of [await event(), await chat(), await chat({ user: "ann", stream: true })]) {
      expect(refused.status).toBe(429);
      const body = (await refused.json()) as { error: { details: { limit: string; used: number } } };
      expect(body.error.details).toMatchObject({ limit: "tokens per day", used: 1020 });
      expect(tokens(refused)).toMatchObject({ limit: "1000", remaining: "0" });
      expect(secondsOf(tokens(refused).reset)).toBeGreaterThan(secondsToMidnight - 60);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    }
  }, 30_000);

  it("sends no token headers where no tokens-per-day quota applies", async () => {
    const unmetered = await harness.key("unmetered");
    const family = await harness.key("family");
    const chat = (key: string, user?: string) =>
      fetch(`${harness.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "assistant",
          messages: [{ role: "user", content: "hello" }],
          ...(user ? { user } : {}),
        }),
      });
    // a request rate but no token quota: the requests headers only
    const counted = await chat(unmetered, "ann");
    await counted.text();
    expect(counted.status).toBe(200);
    expect(counted.headers.get("x-ratelimit-limit-requests")).toBe("1000");
    // a per-user token quota applies only to a request that names a user
    const anonymous = await chat(family);
    await anonymous.text();
    expect(anonymous.status).toBe(200);
    const named = await chat(family, "carol");
    await named.text();
    expect(named.headers.get("x-ratelimit-limit-tokens")).toBe("50");
    for (const response of [counted, anonymous]) {
      for (const name of ["limit", "remaining", "reset"]) {
        expect(response.headers.get(`x-ratelimit-${name}-tokens`)).toBeNull();
      }
    }
  });

  it("stops accepting a revoked key within the key cache time; a revoked bootstrap key stays revoked", async () => {
    const made = await harness.keys.create("acme", ["chat"], "short-lived");
    const ask = () => fetch(`${harness.url}/v1/models`, { headers: { authorization: `Bearer ${made.key}` } });
    expect((await ask()).status).toBe(200);
    expect(await harness.keys.revoke(made.id)).toBe(true);
    await until(async () => (await ask()).status === 401, 2000);

    const bootstrap = (await harness.keys.list("default")).find((key) => key.name === "bootstrap")!;
    await harness.keys.revoke(bootstrap.id);
    expect(await harness.keys.register(BOOTSTRAP_KEY, "default", ["chat"], "bootstrap")).toBe("revoked");
    await until(
      async () =>
        (await fetch(`${harness.url}/v1/models`, { headers: { authorization: `Bearer ${BOOTSTRAP_KEY}` } }))
          .status === 401,
      2000,
    );
  });
});
