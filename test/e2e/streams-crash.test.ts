/**
 * A streamed chat turn whose orchestrator is killed mid-answer: the run finishes on the other
 * replica and every client's stream still ends equal to the stored output, with `stop` (the part
 * it missed is sent from the output), never cut short with a false `stop`.
 */
import { createPool } from "@agent-runtime/stores";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASE_URL } from "../support/isolation.js";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-streams-crash";
const ANSWER =
  "The quick brown fox jumps over the lazy dog, then naps in the sun while the farmer counts his sheep twice.";
let fake: FakeOpenAI;
let stack: Stack;
const workers: ServiceProcess[] = [];

beforeAll(async () => {
  fake = await startFakeOpenAI();
  // slow enough that a worker can be killed mid-answer
  fake.setHandler(() => ({ content: ANSWER, chunkDelayMs: 60 }));
  stack = await startStack({ bootstrapApiKey: KEY, openaiBaseUrl: fake.url, without: ["orchestrator"] });
  const env = { ...stack.env, RUN_ACK_WAIT_MS: "1000", OPS_PORT: "0", LOG_LEVEL: "info" };
  workers.push(await startServiceProcess("orchestrator", env));
  workers.push(await startServiceProcess("orchestrator", env));
});

afterAll(async () => {
  for (const worker of workers) await worker.stop("SIGKILL");
  await stack?.stop();
  await fake?.close();
});

describe("streams across an orchestrator crash", () => {
  it("ends every client's stream with the stored output after a replica is killed mid-stream", async () => {
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60_000 });
    const clients = 12;
    const received: number[] = Array.from({ length: clients }, () => 0);
    const turns = Array.from({ length: clients }, async (_, index) => {
      const { data, response } = await client.chat.completions
        .create({
          model: "assistant",
          messages: [{ role: "user", content: `tell me a story ${index}` }],
          stream: true,
        })
        .withResponse();
      let text = "";
      let finishReason: string | null = null;
      let error: unknown;
      try {
        for await (const chunk of data) {
          text += chunk.choices[0]?.delta.content ?? "";
          received[index] = text.length;
          finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
        }
      } catch (caught) {
        error = caught;
      }
      return { runId: response.headers.get("x-run-id")!, text, finishReason, error };
    });
    // every client has part of its answer: kill one replica
    for (let i = 0; i < 400 && received.some((count) => count === 0); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    expect(received.every((count) => count > 0 && count < ANSWER.length)).toBe(true);
    await workers[0]!.stop("SIGKILL");

    const results = await Promise.all(turns);
    for (const result of results) {
      const stored = (await (
        await fetch(`${stack.url}/v1/runs/${result.runId}`, { headers: { authorization: `Bearer ${KEY}` } })
      ).json()) as { status: string; output: { content: string } | null };
      expect(result.error).toBeUndefined();
      expect(stored.status).toBe("completed");
      expect(result.finishReason).toBe("stop");
      expect(result.text).toBe(stored.output?.content);
      expect(result.text).toBe(ANSWER);
    }
    // the crash was mid-stream for some of them: their runs were taken over
    const pool = await createPool({ url: DATABASE_URL, schema: stack.isolation.schema, max: 1 });
    try {
      const { rows } = await pool.query<{ resumed: number }>(
        "SELECT count(*)::int AS resumed FROM runs WHERE id = ANY($1) AND attempts > 1",
        [results.map((result) => result.runId)],
      );
      console.log(`${rows[0]?.resumed} of ${clients} streams were finished by the other replica`);
      expect(rows[0]?.resumed).toBeGreaterThan(0);
    } finally {
      await pool.end();
    }
  });
});
