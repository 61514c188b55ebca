/**
 * The dashboard in a real browser (playwright-core driving the machine's Chromium) after a
 * scripted burst: chat turns with a tool, a slow agent, provider failures, refused requests
 * (401, 403, 413) and a batch flood past its tenant's rate limit (429). Every chart must have
 * drawn points, the hotspots must name the slow agent, the refusals must be in the error rate,
 * and the page must log no console error. Saves a screenshot under test/e2e/results/.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KeyStore } from "@agent-runtime/ingress";
import { createPool } from "@agent-runtime/stores";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import type pg from "pg";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DATABASE_URL } from "../support/isolation.js";
import { type Stack, startStack } from "../support/stack.js";

const ADMIN_KEY = "sk-dashboard-admin-key";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const RESULTS = join(dirname(fileURLToPath(import.meta.url)), "results");
const CHARTS = [
  "latency-service",
  "latency-agent",
  "tokens",
  "cost",
  "errors",
  "throughput",
  "queue",
  "shed",
];

let fake: FakeOpenAI;
let stack: Stack;
let pool: pg.Pool;
let floodKey: string;
let chatOnlyKey: string;
let browser: Browser | undefined;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const system = contentText(body.messages[0]?.content);
    const last = body.messages.at(-1);
    const text = contentText(last?.content);
    if (last?.role === "tool") return { content: `tool said: ${contentText(last.content)}` };
    if (text.includes("FAIL")) return { fault: { kind: "status", status: 500 } };
    if (text.includes("CALC"))
      return { toolCalls: [{ name: "calculator", arguments: { expression: "6*7" } }] };
    return {
      content: `answer to ${text.slice(0, 40)}`,
      // the slow agent's long system prompt: the provider serves part of it from its prompt cache
      ...(system.includes("SLUGGISH")
        ? { latencyMs: 2500, usage: { prompt_tokens: 2048, completion_tokens: 8, cached_tokens: 1024 } }
        : {}),
    };
  });
  const configPath = join(mkdtempSync(join(tmpdir(), "dashboard-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      agents: {
        assistant: { tools: ["calculator"] },
        slowpoke: { systemPrompt: "You are a SLUGGISH agent.", tools: [] },
        flaky: { tools: [] },
      },
      limits: { tenants: { flood: { requestsPerMinute: 12 } } },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: ADMIN_KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath, MODEL_MAX_RETRIES: "0" },
  });
  pool = await createPool({ url: DATABASE_URL, schema: stack.isolation.schema, max: 2 });
  const keys = await KeyStore.open(pool, 0);
  floodKey = (await keys.create("flood", ["chat", "runs"], "flood")).key;
  chatOnlyKey = (await keys.create("acme", ["chat"], "acme")).key;
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await pool?.end();
  await stack?.stop();
  await fake?.close();
});

async function post(path: string, key: string | null, body: unknown): Promise<number> {
  const response = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

const chat = (key: string, agent: string, text: string, user = "ada") =>
  post("/v1/chat/completions", key, { model: agent, user, messages: [{ role: "user", content: text }] });

/** The burst: fast turns with a tool, a slow agent, provider failures, refusals and a batch flood. */
async function burst(): Promise<Record<string, number[]>> {
  const statuses: Record<string, number[]> = {};
  const note = (name: string, status: number) => {
    statuses[name] = [...(statuses[name] ?? []), status];
  };
  await Promise.all([
    ...Array.from({ length: 8 }, (_, index) =>
      chat(ADMIN_KEY, "assistant", `CALC please ${index}`, `user-${index % 3}`).then((status) =>
        note("assistant", status),
      ),
    ),
    ...Array.from({ length: 4 }, (_, index) =>
      chat(ADMIN_KEY, "slowpoke", `slow question ${index}`, "grace").then((status) =>
        note("slowpoke", status),
      ),
    ),
    ...Array.from({ length: 2 }, (_, index) =>
      chat(ADMIN_KEY, "flaky", `FAIL now ${index}`).then((status) => note("failing", status)),
    ),
    ...Array.from({ length: 3 }, () =>
      chat("sk-not-a-real-key", "assistant", "hi").then((s) => note("401", s)),
    ),
    ...Array.from({ length: 2 }, () =>
      post("/v1/runs", chatOnlyKey, { agent: "assistant", input: "hi" }).then((s) => note("403", s)),
    ),
    post(
      "/v1/chat/completions",
      ADMIN_KEY,
      `{"model":"assistant","messages":[{"role":"user","content":"${"x".repeat(1100 * 1024)}"}]}`,
    ).then((status) => note("413", status)),
    ...Array.from({ length: 30 }, (_, index) =>
      post("/v1/runs", floodKey, { agent: "assistant", input: `batch job ${index}`, priority: "batch" }).then(
        (status) => note("flood", status),
      ),
    ),
  ]);
  return statuses;
}

interface SeriesAnswer {
  error_rate: Array<{ label: string }>;
  hotspots: Array<{ kind: string; name: string; p95_ms: number }>;
  queue: Array<{ values: Array<number | null> }>;
  shed: Array<{ label: string }>;
  totals: { calls: number };
  cache_savings: Array<{ cache: string; hits: number }>;
}

async function series(): Promise<SeriesAnswer> {
  const response = await fetch(`${stack.url}/v1/stats/series?range=15m`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as SeriesAnswer;
}

describe("dashboard in a real browser", () => {
  it("draws every chart after a burst, names the slow agent and counts refusals", async () => {
    const statuses = await burst();
    // a key lookup that times out on a loaded machine is a 503, itself a refusal to count
    expect(statuses["401"]!.every((status) => status === 401 || status === 503)).toBe(true);
    expect(statuses["403"]!.every((status) => status === 403 || status === 503)).toBe(true);
    expect(statuses["413"]).toEqual([413]);
    expect(statuses.flood).toContain(429);
    expect(statuses.slowpoke).toEqual([200, 200, 200, 200]);
    const refusals = [
      ...new Set([...statuses["401"]!, ...statuses["403"]!, 413, 429].map((status) => `ingress ${status}`)),
    ];

    // usage arrives through JetStream, HTTP rows every 2 s, queue depth every 5 s
    let answer = await series();
    for (let attempt = 0; attempt < 60; attempt++) {
      const codes = answer.error_rate.map((entry) => entry.label);
      const ready =
        refusals.every((code) => codes.includes(code)) &&
        answer.hotspots.some((hotspot) => hotspot.kind === "agent" && hotspot.name === "slowpoke") &&
        answer.queue.some((lane) => lane.values.some((value) => value !== null)) &&
        answer.totals.calls > 0 &&
        answer.cache_savings.some((entry) => entry.cache === "provider prompt" && entry.hits >= 4);
      if (ready) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
      answer = await series();
    }
    expect(answer.error_rate.map((entry) => entry.label)).toEqual(expect.arrayContaining(refusals));
    expect(answer.shed.map((entry) => entry.label)).toContain("ingress");

    expect(existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium`).toBe(true);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const consoleErrors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));

    await page.goto(`${stack.url}/dashboard`);
    // no key yet: the page says what it wants and why
    const prompt = page.locator("#prompt");
    await prompt.waitFor({ state: "visible" });
    expect(await prompt.textContent()).toMatch(
      /needs an API key[\s\S]*runs[\s\S]*admin key shows every tenant/,
    );
    await page.fill("#key", ADMIN_KEY);
    await page.click("#prompt button[type=submit]");
    await page.selectOption("#range", "15m");
    await page.waitForFunction(
      () => (globalThis as unknown as { __dashboard: { updates: number } }).__dashboard.updates >= 2,
      undefined,
      { timeout: 15_000 },
    );

    const drawn = await page.evaluate((ids) => {
      const charts = (
        globalThis as unknown as {
          __dashboard: { charts: Record<string, { data: Array<Array<number | null>> }> };
        }
      ).__dashboard.charts;
      return Object.fromEntries(
        ids.map((id) => {
          const chart = charts[id];
          const points = chart
            ? chart.data
                .slice(1)
                .reduce((sum, values) => sum + values.filter((value) => value !== null).length, 0)
            : 0;
          return [id, points];
        }),
      );
    }, CHARTS);
    for (const id of CHARTS) expect(drawn[id], `chart ${id} has no points`).toBeGreaterThan(0);
    // the canvases really are painted
    expect(await page.locator("#charts canvas").count()).toBeGreaterThanOrEqual(CHARTS.length);

    const hotspotRows = await page.locator("#hotspots tr").allTextContents();
    // the slow agent is named with a p95 at least the latency the fake gave it
    const slow = answer.hotspots.find((hotspot) => hotspot.kind === "agent" && hotspot.name === "slowpoke");
    expect(slow?.p95_ms).toBeGreaterThanOrEqual(2500);
    expect(hotspotRows.some((row) => row.startsWith("agent") && row.includes("slowpoke"))).toBe(true);

    // every table cell and card has a value of the body (a misnamed field would print undefined or NaN)
    const cacheRows = await page.locator("#caches tr").allTextContents();
    expect(cacheRows.map((row) => row.split(/\d/)[0])).toEqual([
      "response",
      "embedding",
      "tool",
      "provider prompt",
    ]);
    // the provider prompt row: the slow agent's four calls hit the provider's prompt cache, and
    // its hit % is hits over the calls that reached a provider
    const promptCells = await page.locator("#caches tr").nth(3).locator("td").allTextContents();
    const [, hits, calls, hitRate, tokens] = promptCells;
    expect(Number(hits)).toBe(4);
    expect(Number(tokens)).toBe(4 * 1024);
    expect(Number(calls)).toBeGreaterThan(4);
    expect(hitRate).toBe(((100 * 4) / Number(calls)).toFixed(1));
    const cells = [...hotspotRows, ...cacheRows, ...(await page.locator("#cards").allTextContents())];
    expect(cells.filter((text) => /undefined|NaN/.test(text))).toEqual([]);

    const errorLegend = await page.locator("#chart-errors").textContent();
    for (const code of refusals) expect(errorLegend).toContain(code);

    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, "dashboard.png"), fullPage: true });
    expect(consoleErrors).toEqual([]);
  }, 120_000);
});
