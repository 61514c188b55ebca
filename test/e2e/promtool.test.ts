/**
 * Prometheus's own checker on what the runtime ships and serves: the alert rules and the scrape
 * config under infra/, and every service's live `/metrics` after real traffic (a tool turn, a
 * streamed turn, a refused request). `promtool` comes from Debian's `prometheus` package
 * (`.ci/run` installs it); without it these tests are skipped, unless CI_REQUIRE_PROMTOOL=1.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, type StackService, startStack } from "../support/stack.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const API_KEY = "sk-promtool-key";
const SERVICES: StackService[] = ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"];

const promtool = spawnSync("promtool", ["--version"], { encoding: "utf8" });
const installed = promtool.status === 0;
if (!installed && process.env.CI_REQUIRE_PROMTOOL === "1")
  throw new Error("promtool is required (CI_REQUIRE_PROMTOOL=1): apt-get install prometheus");

function check(args: string[], input?: string) {
  const result = spawnSync("promtool", ["check", ...args], { encoding: "utf8", input, cwd: root });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

describe.skipIf(!installed)("promtool (skipped without it: apt-get install prometheus)", () => {
  let fake: FakeOpenAI;
  let stack: Stack;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    stack = await startStack({ openaiBaseUrl: fake.url, bootstrapApiKey: API_KEY });
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
    fake.setHandler((body) =>
      body.messages.some((message) => message.role === "tool")
        ? { content: "It is 42." }
        : { toolCalls: [{ name: "calculator", arguments: { expression: "6 * 7" } }] },
    );
    await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "6 * 7?" }],
    });
    fake.setHandler(() => ({ content: "streamed answer" }));
    const stream = await client.chat.completions.create({
      model: "assistant",
      stream: true,
      messages: [{ role: "user", content: "hello" }],
    });
    for await (const _chunk of stream);
    const refused = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer sk-wrong", "content-type": "application/json" },
      body: "{}",
    });
    expect(refused.status).toBe(401);
  });

  afterAll(async () => {
    await stack?.stop();
    await fake?.close();
  });

  it("passes the alert rules", () => {
    const files = readdirSync(join(root, "infra/alerts"))
      .filter((file) => /\.ya?ml$/.test(file))
      .map((file) => join("infra/alerts", file));
    expect(files.length).toBeGreaterThan(0);
    const result = check(["rules", ...files]);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("passes the Prometheus scrape config (syntax: its rule files are mounted only in compose)", () => {
    const result = check(["config", "--syntax-only", "infra/prometheus/prometheus.yml"]);
    expect(result.status, result.output).toBe(0);
  });

  it.each(SERVICES)("finds nothing to fix in %s's /metrics after real traffic", async (service) => {
    const url = stack.opsUrls[service];
    expect(url, `${service} has an ops port`).toBeDefined();
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/^# (HELP|TYPE) /m);
    const result = check(["metrics"], text);
    expect(result.output, `${service}: promtool check metrics`).toBe("");
    expect(result.status).toBe(0);
  });
});
