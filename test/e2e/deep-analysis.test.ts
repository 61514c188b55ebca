/**
 * The deep-analysis opt-in over HTTP: `deep_analysis: true` on a chat completion or a run travels
 * with the run to each model step, and the model proxy routes it to the strong tier; without it the
 * same request goes to the fast tier. A value that is not a boolean is a 400 naming the field.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Stack, startStack } from "../support/stack.js";

const API_KEY = "sk-e2e-deep-analysis-key";

let fake: FakeOpenAI;
let stack: Stack;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler((body) => ({ content: `answered by ${body.model}` }));
  const configPath = join(mkdtempSync(join(tmpdir(), "deep-analysis-")), "agents.yaml");
  writeFileSync(
    configPath,
    stringify({
      agents: {
        lead: { systemPrompt: "You lead.", delegates: ["researcher"], tools: [] },
        researcher: { systemPrompt: "You research.", description: "finds facts", tools: [] },
      },
    }),
  );
  stack = await startStack({
    openaiBaseUrl: fake.url,
    bootstrapApiKey: API_KEY,
    env: { AGENT_CONFIG: configPath },
  });
});

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

const post = (path: string, body: unknown) =>
  fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** The provider models a request reached, from the fake provider's log. */
async function modelsFor(send: () => Promise<Response>): Promise<{ response: Response; models: string[] }> {
  const before = fake.chatRequests().length;
  const response = await send();
  const models = fake
    .chatRequests()
    .slice(before)
    .map((request) => request.model);
  return { response, models };
}

describe("deep analysis on request", () => {
  it("routes a chat turn to the strong tier with deep_analysis, and to the fast tier without", async () => {
    // a short, plain question: by its complexity alone it belongs on the fast tier
    const question = () => [{ role: "user", content: `hi, ${randomUUID()}` }];
    const deep = await modelsFor(() =>
      post("/v1/chat/completions", { model: "assistant", messages: question(), deep_analysis: true }),
    );
    expect(deep.response.status).toBe(200);
    const deepBody = (await deep.response.json()) as { choices: Array<{ message: { content: string } }> };
    expect(deep.models).toEqual(["fake-strong"]);
    expect(deepBody.choices[0]?.message.content).toBe("answered by fake-strong");

    const plain = await modelsFor(() =>
      post("/v1/chat/completions", { model: "assistant", messages: question() }),
    );
    expect(plain.response.status).toBe(200);
    expect(plain.models).toEqual(["fake-fast"]);

    const off = await modelsFor(() =>
      post("/v1/chat/completions", { model: "assistant", messages: question(), deep_analysis: false }),
    );
    expect(off.response.status).toBe(200);
    expect(off.models).toEqual(["fake-fast"]);
  });

  it("routes a run of the runs API to the strong tier with deep_analysis, and to the fast tier without", async () => {
    const deep = await modelsFor(() =>
      post("/v1/runs", { agent: "assistant", input: `hi, ${randomUUID()}`, wait: true, deep_analysis: true }),
    );
    expect(deep.response.status).toBe(200);
    const run = (await deep.response.json()) as { status: string; output: { content: string } };
    expect(run.status).toBe("completed");
    expect(run.output.content).toBe("answered by fake-strong");
    expect(deep.models).toEqual(["fake-strong"]);

    const plain = await modelsFor(() =>
      post("/v1/runs", { agent: "assistant", input: `hi, ${randomUUID()}`, wait: true }),
    );
    expect(plain.response.status).toBe(200);
    expect(plain.models).toEqual(["fake-fast"]);
  });

  it("keeps the opt-in for a delegated subtask: the specialist's steps go to the strong tier too", async () => {
    fake.setHandler((body) => {
      const system = String(body.messages[0]?.content ?? "");
      if (system.startsWith("You research.")) return { content: `found by ${body.model}` };
      const result = body.messages.find((message) => message.role === "tool");
      if (!result)
        return {
          toolCalls: [
            { id: "call_del", name: "delegate", arguments: { agent: "researcher", task: "find the answer" } },
          ],
        };
      return { content: `lead says: ${String(result.content)}` };
    });
    try {
      const deep = await modelsFor(() =>
        post("/v1/runs", {
          agent: "lead",
          input: `what is it? ${randomUUID()}`,
          wait: true,
          deep_analysis: true,
        }),
      );
      expect(deep.response.status).toBe(200);
      const run = (await deep.response.json()) as { status: string; output: { content: string } };
      expect(run.status).toBe("completed");
      expect(run.output.content).toBe("lead says: found by fake-strong");
      // the lead's two steps and the researcher's one
      expect(deep.models).toEqual(["fake-strong", "fake-strong", "fake-strong"]);
    } finally {
      fake.setHandler((body) => ({ content: `answered by ${body.model}` }));
    }
  });

  it("documents deep_analysis as a boolean on both request bodies", async () => {
    const document = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
      components: {
        schemas: Record<string, { properties: Record<string, { type: string; description: string }> }>;
      };
    };
    for (const name of ["ChatCompletionRequest", "CreateRunRequest"]) {
      const field = document.components.schemas[name]?.properties.deep_analysis;
      expect(field?.type).toBe("boolean");
      expect(field?.description).toContain("strong tier");
    }
  });

  it("refuses a deep_analysis that is not a boolean with a 400 naming it", async () => {
    for (const [path, body] of [
      ["/v1/chat/completions", { model: "assistant", messages: [{ role: "user", content: "hi" }] }],
      ["/v1/runs", { agent: "assistant", input: "hi" }],
    ] as const) {
      const before = fake.chatRequests().length;
      const response = await post(path, { ...body, deep_analysis: "yes" });
      expect(response.status).toBe(400);
      const error = (await response.json()) as { error: { code: string; message: string; param: string } };
      expect(error.error.param).toBe("deep_analysis");
      expect(error.error.message).toContain("deep_analysis");
      expect(fake.chatRequests().length).toBe(before);
    }
  });
});
