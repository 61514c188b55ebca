/**
 * Runs the workload once against a private stack (own NATS prefix, Postgres schema and Redis
 * prefix; the five services in this process, or each in a process of its own as deployed)
 * through the public HTTP API (chat, memories, CloudEvents), with the grading provider as the
 * model, and returns what the run cost and how many tasks it got right.
 */

import { rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@agent-runtime/ingress";
import { createPool } from "@agent-runtime/stores";
import {
  createGradingProvider,
  embeddingBill,
  type GradedCall,
  startFakeOpenAI,
  verdictOf,
} from "@agent-runtime/testkit";
import { DATABASE_URL, dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { freePort } from "../support/processes.js";
import { freshRuntime, startReplicaPool } from "../support/replicas.js";
import { startStack } from "../support/stack.js";
import { type RunSettings, runtimeConfig } from "./settings.js";
import { orderStatus, type ReplayTask, stockLevel, type Workload } from "./workload.js";

export interface RunFigures {
  name: string;
  usd: number;
  tasks: number;
  correct: number;
  wrong: string[];
  tokens: { prompt: number; cached: number; completion: number; embedding: number };
  cachedShare: number;
  calls: { strong: number; fast: number };
  /**
   * Interactive: a chat turn as its client waited for it. Batch: a CloudEvent from its publish to
   * the provider's answer of its run. The batch window runs from the first event's publish to the
   * last batch answer; a turn is "during batch" when it overlapped that window.
   */
  latencyMs: {
    p50: number;
    p99: number;
    interactiveP99DuringBatch: number;
    interactiveP99Other: number;
    interactiveDuringBatch: number;
    batchP50: number;
    batchP99: number;
    batchWindowSeconds: number;
  };
  usdByTenant: Record<string, number>;
  usdByAgent: Record<string, number>;
  usdByKind: Record<string, number>;
  webhook: { tasks: number; calls: number; exactlyOnce: boolean };
  toolServerCalls: number;
  wallSeconds: number;
  /** The machine's 1-minute load average at the end of the run (latency figures depend on it). */
  loadAverage: number;
}

/** One chat turn as its client saw it (epoch ms). */
interface Latency {
  task: string;
  ms: number;
  from: number;
  to: number;
}

const round = (value: number, digits = 6) => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], share: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!);
}

/** The tools' HTTP server: lookups answer deterministically; tickets are counted per reference. */
async function startToolServer(): Promise<{
  url: string;
  tickets: Map<string, number>;
  calls: () => number;
  close(): Promise<void>;
}> {
  const tickets = new Map<string, number>();
  let calls = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      calls++;
      let args: Record<string, string> = {};
      try {
        args = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, string>;
      } catch {
        // answered below
      }
      let text = "unknown tool";
      if (request.url === "/order") text = orderStatus(String(args.order));
      else if (request.url === "/stock") text = stockLevel(String(args.sku));
      else if (request.url === "/ticket") {
        const ref = String(args.ref);
        tickets.set(ref, (tickets.get(ref) ?? 0) + 1);
        text = `ticket TCK-${ref} created`;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ result: text }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tickets,
    calls: () => calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** A run's figures, with each interactive task's latency (to compare the same tasks across runs). */
export interface RunOutcome extends RunFigures {
  taskLatencyMs: Record<string, number>;
  /** Interactive tasks that overlapped the batch window. */
  duringBatch: string[];
}

export interface ReplayOptions {
  /** Only the first N tasks of each kind-group (a smoke run). */
  limit?: number;
  concurrency?: number;
  /**
   * Each service in a process of its own (compiled when built, as deployed) instead of all five
   * in this process, where every service's work queues on one event loop with the clients'.
   */
  processes?: boolean;
}

interface ReplayStack {
  url: string;
  schema: string;
  stop(): Promise<void>;
}

/** The five services, each in a process of its own, on a private prefix and schema. */
async function startProcessStack(
  bootstrapApiKey: string,
  openaiBaseUrl: string,
  extra: NodeJS.ProcessEnv,
): Promise<ReplayStack> {
  const isolation = newIsolation("replay");
  const port = await freePort();
  const logDir = join(tmpdir(), `replay-logs-${isolation.schema}`);
  const pool = await startReplicaPool({
    replicas: 1,
    logDir,
    runtime: freshRuntime().runtime,
    readyTimeoutMs: 120_000,
    env: isolatedEnv(isolation, {
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      BOOTSTRAP_API_KEY: bootstrapApiKey,
      OPENAI_BASE_URL: openaiBaseUrl,
      OPENAI_API_KEY: "sk-fake",
      ...extra,
    }),
    envOf: (service) => (service === "ingress" ? { PORT: String(port) } : {}),
  });
  return {
    url: `http://127.0.0.1:${port}`,
    schema: isolation.schema,
    stop: async () => {
      await pool.stopAll();
      await dropIsolation(isolation).catch(() => undefined);
      // the services' logs are kept only when a process ended on its own (for its report)
      if (pool.exits.every((exit) => exit.signal === "SIGTERM" || exit.code === 0))
        rmSync(logDir, { recursive: true, force: true });
    },
  };
}

export async function replayOnce(
  workload: Workload,
  settings: RunSettings,
  options: ReplayOptions = {},
): Promise<RunOutcome> {
  const started = Date.now();
  const selected = options.limit ? selectSmoke(workload.tasks, options.limit) : workload.tasks;
  const tasks = settings.batch === false ? selected.filter((task) => task.kind !== "batch") : selected;
  const grading = createGradingProvider({
    questions: workload.questions,
    promptCaching: !settings.off.has("promptCache"),
  });
  const fake = await startFakeOpenAI({ defaultHandler: grading.handler, embeddingDimensions: 64 });
  const tools = await startToolServer();
  const { config, env } = runtimeConfig(settings, tools.url, workload.knowledgeBase, fake.url);
  const configPath = join(tmpdir(), `replay-${settings.name}-${process.pid}-${Date.now()}.json`);
  writeFileSync(configPath, JSON.stringify(config));
  const adminKey = `sk-replay-${settings.name}`;
  const stackEnv: NodeJS.ProcessEnv = {
    AGENT_CONFIG: configPath,
    MODEL_FAST: "fast-mini",
    MODEL_STRONG: "strong-large",
    MODEL_EMBED: "embed-small",
    ...env,
  };
  const stack: ReplayStack = options.processes
    ? await startProcessStack(adminKey, fake.url, stackEnv)
    : await startStack({ bootstrapApiKey: adminKey, openaiBaseUrl: fake.url, env: stackEnv }).then(
        (inProcess) => ({ url: inProcess.url, schema: inProcess.isolation.schema, stop: inProcess.stop }),
      );
  const database = await createPool({ url: DATABASE_URL, schema: stack.schema, max: 2 });
  try {
    const keyStore = await KeyStore.open(database, 0);
    const keys = new Map<string, string>();
    for (const tenant of workload.tenants)
      keys.set(tenant, (await keyStore.create(tenant, ["chat", "runs", "events", "admin"], "replay")).key);
    const http = async (
      tenant: string,
      path: string,
      body: unknown,
      headers: Record<string, string> = {},
    ) => {
      for (let attempt = 0; ; attempt++) {
        const response = await fetch(`${stack.url}${path}`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${keys.get(tenant)}`,
            "content-type": "application/json",
            ...headers,
          },
          body: JSON.stringify(body),
        });
        if ((response.status === 429 || response.status === 503) && attempt < 20) {
          await sleep(Number(response.headers.get("retry-after") ?? 1) * 1000);
          continue;
        }
        return response;
      }
    };
    const relevantDocuments = workload.documents.filter((document) =>
      tasks.some((task) => task.user === document.user),
    );
    for (const document of relevantDocuments) {
      const response = await http(document.tenant, "/v1/memories", {
        text: document.text,
        user: document.user,
        id: document.id,
        kind: "document",
      });
      if (!response.ok)
        throw new Error(`memory document refused: ${response.status} ${await response.text()}`);
    }

    const answers = new Map<string, string>();
    const latencies: Latency[] = [];
    const errors: string[] = [];
    const chat = async (task: ReplayTask) => {
      const begin = performance.now();
      const startedAt = Date.now();
      const response = await http(
        task.tenant,
        "/v1/chat/completions",
        {
          model: task.agent,
          user: task.user,
          messages: [{ role: "user", content: task.input }],
          ...(task.temperature !== undefined ? { temperature: task.temperature } : {}),
          ...(task.seed !== undefined ? { seed: task.seed } : {}),
        },
        task.thread ? { "x-thread-id": `${task.thread}-${settings.name}` } : {},
      );
      const text = await response.text();
      latencies.push({ task: task.id, ms: performance.now() - begin, from: startedAt, to: Date.now() });
      if (!response.ok) {
        errors.push(`${task.id}: ${response.status} ${text.slice(0, 200)}`);
        return;
      }
      const body = JSON.parse(text) as { choices: Array<{ message: { content: string | null } }> };
      answers.set(task.id, body.choices[0]?.message.content ?? "");
    };

    // threads in order (one lane each), the rest through a shared pool, batch events when they come
    const threads = new Map<string, ReplayTask[]>();
    const others: ReplayTask[] = [];
    const batch: ReplayTask[] = [];
    for (const task of tasks) {
      if (task.kind === "batch") batch.push(task);
      else if (task.thread) threads.set(task.thread, [...(threads.get(task.thread) ?? []), task]);
      else others.push(task);
    }
    const batchSent = new Map<string, number>();
    const sendBatch = async () => {
      if (batch.length === 0) return;
      await sleep(2000);
      for (const task of batch) {
        batchSent.set(task.id, Date.now());
        const response = await http(task.tenant, "/v1/events", {
          specversion: "1.0",
          id: `${task.id}-${settings.name}`,
          source: "replay/tickets",
          type: task.event!.type,
          datacontenttype: "application/json",
          data: task.event!.data,
        });
        if (!response.ok) errors.push(`${task.id}: event ${response.status} ${await response.text()}`);
      }
    };
    const concurrency = options.concurrency ?? 6;
    await Promise.all([
      ...[...threads.values()].map(async (turns) => {
        for (const turn of turns) await chat(turn);
      }),
      pool(others, Math.max(1, concurrency - threads.size), chat),
      sendBatch(),
    ]);
    // batch answers reach the provider, not a client: their verdicts are read from its ledger
    const batchKeys = new Set(batch.map((task) => task.question));
    const until = Date.now() + 180_000;
    while (Date.now() < until) {
      const answered = new Set(
        grading.calls.filter((call) => call.verdict && batchKeys.has(call.key ?? "")).map((call) => call.key),
      );
      if (answered.size === batchKeys.size) break;
      await sleep(500);
    }
    const batchLatencies: number[] = [];
    let batchEnd = 0;
    for (const task of batch) {
      const call = [...grading.calls].reverse().find((entry) => entry.key === task.question && entry.verdict);
      if (!call) continue;
      answers.set(task.id, `[[verdict:${task.question}:${call.verdict}]]`);
      batchLatencies.push(call.at - (batchSent.get(task.id) ?? call.at));
      batchEnd = Math.max(batchEnd, call.at);
    }
    const batchStart = Math.min(...batchSent.values());
    // a batch event never answered keeps the window open to the end
    const batchWindow =
      batch.length === 0
        ? { from: 0, to: 0 }
        : { from: batchStart, to: batchLatencies.length === batch.length ? batchEnd : Date.now() };
    // let summaries and indexing finish, so their cost is counted
    await sleep(3000);

    const wrong: string[] = [...errors];
    let correct = 0;
    for (const task of tasks) {
      const verdict = verdictOf(answers.get(task.id) ?? "");
      if (verdict?.key === task.question && verdict.verdict === "correct") correct++;
      else if (!errors.some((error) => error.startsWith(`${task.id}:`)))
        wrong.push(
          `${task.id} (${task.kind} ${task.question}): ${(answers.get(task.id) ?? "no answer").slice(-120)}`,
        );
    }
    return figures({
      settings,
      workload,
      tasks,
      calls: grading.calls,
      embedding: embeddingBill(fake.requests),
      prices: grading.prices,
      latencies,
      batchWindow,
      batchLatencies,
      correct,
      wrong,
      tickets: tools.tickets,
      toolServerCalls: tools.calls(),
      started,
    });
  } finally {
    await database.end();
    await stack.stop();
    await fake.close();
    await tools.close();
  }
}

/** A few of each kind (threads cut short but keeping their early fact and late questions). */
function selectSmoke(tasks: readonly ReplayTask[], perKind: number): ReplayTask[] {
  const counts = new Map<string, number>();
  const chosenThreads = new Set<string>();
  return tasks.filter((task) => {
    if (task.thread) {
      if (!chosenThreads.has(task.thread) && chosenThreads.size >= 1) return false;
      chosenThreads.add(task.thread);
      const turn = Number(task.question.split("-t")[1]);
      return turn < perKind || turn >= 34;
    }
    const seen = counts.get(task.kind) ?? 0;
    counts.set(task.kind, seen + 1);
    return seen < perKind;
  });
}

function figures(input: {
  settings: RunSettings;
  workload: Workload;
  tasks: ReplayTask[];
  calls: GradedCall[];
  embedding: { tokens: number; usd: number };
  prices: Record<string, { grade: string }>;
  latencies: Latency[];
  batchWindow: { from: number; to: number };
  batchLatencies: number[];
  correct: number;
  wrong: string[];
  tickets: Map<string, number>;
  toolServerCalls: number;
  started: number;
}): RunOutcome {
  const { calls, tasks } = input;
  // which tenant and agent a question's cost belongs to: the first task that asks it
  const owner = new Map<string, ReplayTask>();
  const tenantsOf = new Map<string, Set<string>>();
  for (const task of tasks) {
    if (!owner.has(task.question)) owner.set(task.question, task);
    tenantsOf.set(task.question, (tenantsOf.get(task.question) ?? new Set()).add(task.tenant));
  }
  const usdByTenant: Record<string, number> = {};
  const usdByAgent: Record<string, number> = {};
  const usdByKind: Record<string, number> = {};
  const addTo = (table: Record<string, number>, key: string, usd: number) => {
    table[key] = (table[key] ?? 0) + usd;
  };
  let prompt = 0;
  let cached = 0;
  let completion = 0;
  let usd = input.embedding.usd;
  const models = { strong: 0, fast: 0 };
  for (const call of calls) {
    prompt += call.promptTokens;
    cached += call.cachedTokens;
    completion += call.completionTokens;
    usd += call.usd;
    if (input.prices[call.model]?.grade === "strong") models.strong++;
    else models.fast++;
    const task = call.key ? owner.get(call.key) : undefined;
    // a question several tenants ask is shared among them evenly
    const tenants = call.key ? [...(tenantsOf.get(call.key) ?? [])] : [];
    if (tenants.length > 0)
      for (const tenant of tenants) addTo(usdByTenant, tenant, call.usd / tenants.length);
    else addTo(usdByTenant, call.kind === "summarize" ? "(summaries)" : "(unattributed)", call.usd);
    addTo(usdByAgent, task?.agent ?? (call.kind === "summarize" ? "(summarizer)" : "(other)"), call.usd);
    addTo(usdByKind, call.kind, call.usd);
  }
  addTo(usdByAgent, "(embeddings)", input.embedding.usd);
  const interactive = input.latencies.map((entry) => entry.ms);
  const overlaps = (entry: Latency) => entry.from < input.batchWindow.to && entry.to > input.batchWindow.from;
  const during = input.latencies.filter(overlaps);
  const outside = input.latencies.filter((entry) => !overlaps(entry)).map((entry) => entry.ms);
  const webhookTasks = tasks.filter((task) => task.kind === "webhook");
  const roundAll = (table: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(table)
        .sort(([, a], [, b]) => b - a)
        .map(([key, value]) => [key, round(value)]),
    );
  return {
    name: input.settings.name,
    usd: round(usd),
    tasks: tasks.length,
    correct: input.correct,
    wrong: input.wrong.slice(0, 30),
    tokens: { prompt, cached, completion, embedding: input.embedding.tokens },
    cachedShare: prompt > 0 ? round(cached / prompt, 4) : 0,
    calls: models,
    latencyMs: {
      p50: percentile(interactive, 0.5),
      p99: percentile(interactive, 0.99),
      interactiveP99DuringBatch: percentile(
        during.map((entry) => entry.ms),
        0.99,
      ),
      interactiveP99Other: percentile(outside, 0.99),
      interactiveDuringBatch: during.length,
      batchP50: percentile(input.batchLatencies, 0.5),
      batchP99: percentile(input.batchLatencies, 0.99),
      batchWindowSeconds: round((input.batchWindow.to - input.batchWindow.from) / 1000, 1),
    },
    usdByTenant: roundAll(usdByTenant),
    usdByAgent: roundAll(usdByAgent),
    usdByKind: roundAll(usdByKind),
    webhook: {
      tasks: webhookTasks.length,
      calls: webhookTasks.reduce((sum, task) => sum + (input.tickets.get(task.question) ?? 0), 0),
      exactlyOnce: webhookTasks.every((task) => input.tickets.get(task.question) === 1),
    },
    toolServerCalls: input.toolServerCalls,
    wallSeconds: Math.round((Date.now() - input.started) / 100) / 10,
    loadAverage: round(loadavg()[0] ?? 0, 2),
    taskLatencyMs: Object.fromEntries(input.latencies.map((entry) => [entry.task, Math.round(entry.ms)])),
    duringBatch: during.map((entry) => entry.task),
  };
}
