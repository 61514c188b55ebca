/**
 * Ingress in front of the real services (orchestrator, model-proxy, tool-executor,
 * memory) in this process, with the testkit's fake model as the only provider.
 */
import * as memory from "@agent-runtime/memory";
import * as modelProxy from "@agent-runtime/model-proxy";
import * as orchestrator from "@agent-runtime/orchestrator";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import * as toolExecutor from "@agent-runtime/tool-executor";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningIngress } from "./service.js";
import {
  BOOTSTRAP_KEY,
  dropIsolation,
  type Isolation,
  ingressEnv,
  newIsolation,
  parseSse,
  startIngressIn,
} from "./test-support/harness.js";

let fake: FakeOpenAI;
let isolation: Isolation;
let ingress: RunningIngress;
const services: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const last = [...body.messages].reverse().find((message) => message.role === "user");
    return { content: `real answer to ${String(last?.content ?? "")}` };
  });
  isolation = newIsolation("ingstack");
  const env = ingressEnv(
    isolation,
    {},
    {
      OPENAI_BASE_URL: fake.url,
      OPENAI_API_KEY: "sk-fake",
      MODEL_FAST: "fake-fast",
      MODEL_STRONG: "fake-strong",
      MODEL_EMBED: "fake-embed",
      OPS_PORT: "0",
    },
  );
  const level = env.LOG_LEVEL;
  services.push(
    await memory.startMemory(memory.loadConfig(env), { logger: createLogger({ service: "memory", level }) }),
  );
  services.push(
    await toolExecutor.startToolExecutor(toolExecutor.loadConfig(env), {
      logger: createLogger({ service: "tool-executor", level }),
    }),
  );
  services.push(
    await modelProxy.startModelProxy(modelProxy.loadConfig(env), {
      logger: createLogger({ service: "model-proxy", level }),
    }),
  );
  services.push(
    await orchestrator.startOrchestrator(orchestrator.loadConfig(env), {
      logger: createLogger({ service: "orchestrator", level }),
    }),
  );
  ingress = await startIngressIn(env);
}, 60_000);

afterAll(async () => {
  await ingress?.stop();
  for (const service of services.reverse()) await service.stop().catch(() => undefined);
  await fake?.close();
  if (isolation) await dropIsolation(isolation);
});

describe("ingress with the real services", () => {
  it("answers a chat turn, continues its thread, streams, and shows the run", async () => {
    const client = new OpenAI({ baseURL: `${ingress.url}/v1`, apiKey: BOOTSTRAP_KEY, maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "ping" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("real answer to ping");
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    const threadId = response.headers.get("x-thread-id")!;
    const runId = response.headers.get("x-run-id")!;

    const stream = await client.chat.completions.create(
      {
        model: "assistant",
        messages: [{ role: "user", content: "again" }],
        stream: true,
        stream_options: { include_usage: true },
      },
      { headers: { "x-thread-id": threadId } },
    );
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe("real answer to again");
    expect(usage?.total_tokens).toBeGreaterThan(0);
    // the second turn saw the first one from the server-side thread
    const lastRequest = fake.chatRequests().at(-1)!;
    expect(JSON.stringify(lastRequest.messages)).toContain("real answer to ping");

    const headers = { authorization: `Bearer ${BOOTSTRAP_KEY}` };
    const run = (await (await fetch(`${ingress.url}/v1/runs/${runId}`, { headers })).json()) as {
      status: string;
      thread_id: string;
    };
    expect(run).toMatchObject({ id: runId, object: "run", status: "completed", thread_id: threadId });
    const events = parseSse(
      await (await fetch(`${ingress.url}/v1/runs/${runId}/events`, { headers })).text(),
    );
    expect(events.at(-1)?.event).toBe("run-finished");
    const thread = (await (
      await fetch(`${ingress.url}/v1/threads/${threadId}/messages`, { headers })
    ).json()) as {
      data: { created_at?: string }[];
    };
    expect(thread.data.length).toBeGreaterThanOrEqual(4);
    expect(thread.data.every((entry) => typeof entry.created_at === "string")).toBe(true);
  }, 30_000);
});
