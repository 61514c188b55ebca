/**
 * A client generated from the served OpenAPI document, as a user would make one: openapi-typescript
 * turns `/openapi.json` into types, a small program written against them with openapi-fetch is
 * type-checked by tsc (and a wrong call is refused by it), then drives runs, threads, events and
 * memories on the whole stack through those typed calls.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import openapiTS, { astToString } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-openapi-client-tests";
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
/** Under test/node_modules, so the generated program resolves openapi-fetch like any project would. */
const workDirectory = join(here, "../node_modules/.cache", `openapi-client-${process.pid}-${Date.now()}`);

let fake: FakeOpenAI;
let stack: Stack;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "generated clients work" }));
  const configPath = join(mkdtempSync(join(tmpdir(), "openapi-client-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({ agents: { greeter: { triggers: ["com.example.greet"], tools: [] } } }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
  });
  mkdirSync(workDirectory, { recursive: true });
}, 60_000);

afterAll(async () => {
  rmSync(workDirectory, { recursive: true, force: true });
  await stack?.stop();
  await fake?.close();
});

/** The program a user writes against the generated types. */
const CLIENT = `import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function drive(baseUrl: string, key: string, tag: string) {
  const client = createClient<paths>({ baseUrl, headers: { authorization: "Bearer " + key } });
  const threadId = "thread-" + tag;

  const created = await client.POST("/v1/runs", {
    body: { agent: "assistant", input: "say hello", thread_id: threadId, wait: true },
    params: { header: { "idempotency-key": "create-" + tag } },
  });
  // 200 is the finished run (JSON) or its events (SSE text), 202 the queued run (no usage yet): this call asked for the finished run
  if (typeof created.data !== "object" || !("usage" in created.data)) throw new Error("run not finished: " + JSON.stringify(created.error));
  const finished: Schemas["RunResult"] = created.data;
  // the typed fields of the run resource, as a client reads them
  const spent: { tokens: number; usd: number; thread: string | null } = {
    tokens: finished.usage.total_tokens,
    usd: finished.cost_usd,
    thread: finished.thread_id,
  };

  const fetched = await client.GET("/v1/runs/{id}", { params: { path: { id: finished.id } } });
  const run: Schemas["Run"] | undefined = fetched.data;
  const listed = await client.GET("/v1/runs", { params: { query: { thread_id: threadId, limit: 5 } } });
  const messages = await client.GET("/v1/threads/{id}/messages", { params: { path: { id: threadId } } });
  const missing = await client.GET("/v1/runs/{id}", { params: { path: { id: "run_none_" + tag } } });
  const missingError: Schemas["Error"] | undefined = missing.error;

  const event = {
    specversion: "1.0" as const,
    id: "evt-" + tag,
    source: "https://example.test/signup",
    type: "com.example.greet",
    data: { user: "ada" },
  };
  const accepted = await client.POST("/v1/events", { body: event });
  let triggered: Schemas["Run"][] = [];
  for (let attempt = 0; attempt < 200 && !triggered.some((entry) => entry.status === "completed"); attempt++) {
    await sleep(100);
    triggered = (await client.GET("/v1/runs", { params: { query: { agent: "greeter" } } })).data?.data ?? [];
  }

  const memory = await client.POST("/v1/memories", { body: { user: "ada-" + tag, text: "Ada likes tea.", kind: "fact" } });
  const memories = await client.GET("/v1/memories", { params: { query: { user: "ada-" + tag } } });
  const deleted = await client.DELETE("/v1/threads/{id}", { params: { path: { id: threadId } } });
  const health = await client.GET("/healthz");

  return {
    finished,
    spent,
    run,
    listed: listed.data,
    messages: messages.data,
    missing: { status: missing.response.status, error: missingError },
    accepted: { status: accepted.response.status, body: accepted.data },
    triggered,
    memory: memory.data,
    memories: memories.data,
    deleted: deleted.data,
    health: health.data,
  };
}
`;

/** A call the types must refuse: a query parameter the operation does not have, a path without its id. */
const WRONG = `import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1" });
export const wrong = [
  client.GET("/v1/runs", { params: { query: { colour: "blue" } } }),
  client.GET("/v1/runs/{id}", { params: { path: {} } }),
  client.POST("/v1/runs", { body: { agent: "assistant" } }),
];
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022", "DOM"],
    types: [],
    noEmit: true,
    skipLibCheck: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
  },
};

async function typeCheck(file: string): Promise<{ ok: boolean; output: string }> {
  writeFileSync(join(workDirectory, "tsconfig.json"), JSON.stringify({ ...TSCONFIG, files: [file] }));
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  try {
    await promisify(execFile)(process.execPath, [tsc, "-p", workDirectory], { timeout: 120_000 });
    return { ok: true, output: "" };
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${failure.stdout ?? ""}${failure.stderr ?? ""}` || failure.message };
  }
}

describe("a client generated from /openapi.json", () => {
  it("type-checks, refuses wrong calls, and drives runs, threads, events and memories", async () => {
    const document = await (await fetch(`${stack.url}/openapi.json`)).json();
    // a field with a default may be left out of a request: not required in the generated types
    const types = astToString(await openapiTS(document as never, { defaultNonNullable: false }));
    expect(types).toMatch(/"\/v1\/runs\/\{id\}\/events"/);
    writeFileSync(join(workDirectory, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(workDirectory, "schema.d.ts"), types);
    writeFileSync(join(workDirectory, "client.ts"), CLIENT);
    writeFileSync(join(workDirectory, "wrong.ts"), WRONG);

    const checked = await typeCheck("client.ts");
    expect(checked.output).toBe("");
    expect(checked.ok).toBe(true);
    const refused = await typeCheck("wrong.ts");
    expect(refused.ok).toBe(false);
    expect(refused.output).toMatch(/wrong\.ts\(6,/); // the unknown query parameter
    expect(refused.output).toMatch(/wrong\.ts\(7,/); // the path without its id
    expect(refused.output).toMatch(/wrong\.ts\(8,/); // a run without input

    const program = (await import(join(workDirectory, "client.ts"))) as {
      drive(baseUrl: string, key: string, tag: string): Promise<Record<string, unknown>>;
    };
    const tag = randomUUID().slice(0, 8);
    const result = (await program.drive(stack.url, KEY, tag)) as {
      finished: { id: string; object: string; status: string; output: { content: unknown } | null };
      spent: { tokens: number; usd: number; thread: string | null };
      run: { id: string; object: string; thread_id: string | null; status: string } | undefined;
      listed: { data: { id: string }[]; next_cursor: string | null } | undefined;
      messages:
        | { thread_id: string; data: { message: { role: string; content: unknown }; created_at?: string }[] }
        | undefined;
      missing: { status: number; error: { error: { type: string; message: string } } | undefined };
      accepted: { status: number; body: { accepted: { id: string; duplicate: boolean }[] } | undefined };
      triggered: { agent: string; status: string }[];
      memory: { id: string; object: string } | undefined;
      memories: { data: { id: string; text: string }[] } | undefined;
      deleted: { id: string; deleted: boolean } | undefined;
      health: { status: string } | undefined;
    };
    expect(result.finished).toMatchObject({
      status: "completed",
      output: { content: "generated clients work" },
    });
    expect(result.finished.object).toBe("run");
    expect(result.spent.tokens).toBeGreaterThan(0);
    expect(result.spent.thread).toBe(`thread-${tag}`);
    expect(result.run).toMatchObject({
      id: result.finished.id,
      object: "run",
      thread_id: `thread-${tag}`,
      status: "completed",
    });
    expect(result.listed?.data.map((run) => run.id)).toEqual([result.finished.id]);
    expect(result.messages?.thread_id).toBe(`thread-${tag}`);
    expect(result.messages?.data.map((entry) => entry.message.role)).toEqual(["user", "assistant"]);
    expect(result.messages?.data.every((entry) => typeof entry.created_at === "string")).toBe(true);
    expect(result.missing.status).toBe(404);
    expect(result.missing.error?.error.type).toMatch(/not_found/);
    expect(result.accepted).toMatchObject({
      status: 202,
      body: { accepted: [{ id: `evt-${tag}`, duplicate: false }] },
    });
    expect(result.triggered).toMatchObject([{ agent: "greeter", status: "completed" }]);
    expect(result.memory?.object).toBe("memory");
    expect(result.memories?.data.map((memory) => [memory.id, memory.text])).toEqual([
      [result.memory?.id, "Ada likes tea."],
    ]);
    expect(result.deleted).toMatchObject({ id: `thread-${tag}`, deleted: true });
    expect(result.health).toEqual({ status: "ok" });
  }, 180_000);
});
