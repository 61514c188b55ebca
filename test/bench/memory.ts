/**
 * memory benchmark: memory.context for a 200-turn thread (hot: Redis copy;
 * cold: Postgres), memory.search over 10k and 100k chunks, and the prompt
 * tokens of a long conversation with and without summary + budget.
 */
import { pathToFileURL } from "node:url";
import { createTestBus } from "@agent-runtime/bus/testing";
import { Endpoints } from "@agent-runtime/contracts";
import { lshBucket } from "@agent-runtime/memory";
import { fakeEmbedding, startFakeOpenAI } from "@agent-runtime/testkit";
import { Redis } from "ioredis";
import pg from "pg";
import { DATABASE_URL, dropIsolation, isolatedEnv, newIsolation, REDIS_URL } from "../support/isolation.js";
import { startServiceProcess } from "../support/processes.js";
import { summarize, writeResult } from "./stats.js";

const WORDS =
  "alpha beta gamma delta invoice shipping refund account password billing order product customer support warranty delivery tracking payment discount subscription renewal upgrade".split(
    " ",
  );

function sentence(seed: number): string {
  const words: string[] = [];
  let state = seed;
  for (let i = 0; i < 24; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    words.push(WORDS[state % WORDS.length]!);
  }
  return `${words.join(" ")} item${seed % 997}.`;
}

export async function run() {
  const fake = await startFakeOpenAI();
  fake.setHandler(() => ({
    content: "Summary: the customer discussed orders, refunds and billing; open question on invoice 42.",
  }));
  const isolation = newIsolation("benchmem");
  const env = isolatedEnv(isolation, {
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    MODEL_EMBED: "fake-embed",
  });
  const proxy = await startServiceProcess("model-proxy", env);
  const memory = await startServiceProcess("memory", env);
  const bus = await createTestBus({ prefix: isolation.natsPrefix });
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  const redis = new Redis(REDIS_URL);
  let counter = 0;
  const meta = (tenant = "bench") => ({
    v: 1 as const,
    tenant,
    requestId: `m-${counter++}`,
    deadline: Date.now() + 30_000,
  });
  try {
    // a 200-turn thread
    const thread = "thread-200";
    for (let batch = 0; batch < 10; batch++) {
      await bus.request(Endpoints.memoryAppend, {
        meta: meta(),
        threadId: thread,
        messages: Array.from({ length: 20 }, (_, index) => {
          const n = batch * 20 + index;
          return {
            id: `${thread}:${n}`,
            message: {
              role: n % 2 === 0 ? ("user" as const) : ("assistant" as const),
              content: `turn ${n}: ${sentence(n)}`,
            },
          };
        }),
      });
    }
    const contextRequest = (budget: number) => ({
      meta: meta(),
      threadId: thread,
      agent: "assistant",
      systemPrompt: "You are a helpful support agent.",
      input: [{ role: "user" as const, content: "what was the open question?" }],
      budgetTokens: budget,
    });
    // no summary yet: the whole history is what a naive prompt would send
    const fullHistory = await bus.request(Endpoints.memoryContext, contextRequest(1_000_000));
    const hot: number[] = [];
    const cold: number[] = [];
    const hotKey = `${isolation.redisPrefix}mem:thread:bench:${thread}`;
    for (let i = 0; i < 200; i++) {
      let started = performance.now();
      await bus.request(Endpoints.memoryContext, contextRequest(4000));
      hot.push(performance.now() - started);
      await redis.del(hotKey);
      started = performance.now();
      await bus.request(Endpoints.memoryContext, contextRequest(4000));
      cold.push(performance.now() - started);
    }
    // wait for the summary job (queued by the appends) to land
    for (let i = 0; i < 200; i++) {
      const row = await db.query(`SELECT summary FROM "${isolation.schema}".threads WHERE id = $1`, [thread]);
      if (row.rows[0]?.summary) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const lean = await bus.request(Endpoints.memoryContext, contextRequest(4000));

    // search corpora: 10k and 100k chunks, bulk-inserted with their embeddings
    const search: Record<string, unknown> = {};
    let inserted = 0;
    for (const target of [10_000, 100_000]) {
      while (inserted < target) {
        const size = Math.min(5000, target - inserted);
        const ids = Array.from({ length: size }, (_, index) => `doc-${inserted + index}`);
        const texts = ids.map((_, index) => sentence(inserted + index));
        const vectors = texts.map((text) => fakeEmbedding(text));
        await db.query(
          `INSERT INTO "${isolation.schema}".documents (tenant, id, kind, text_hash) SELECT 'bench', id, 'document', md5(id) FROM unnest($1::text[]) id`,
          [ids],
        );
        await db.query(
          `INSERT INTO "${isolation.schema}".chunks (tenant, id, document_id, kind, position, text, text_hash, tokens, embedding, lsh)
           SELECT 'bench', id || ':1', id, 'document', 0, text, md5(text), 30, embedding::real[], lsh
           FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[]) AS c(id, text, embedding, lsh)`,
          [ids, texts, vectors.map((vector) => `{${vector.join(",")}}`), vectors.map(lshBucket)],
        );
        inserted += size;
      }
      await db.query(`ANALYZE "${isolation.schema}".chunks`);
      // measure the search itself, not the query cache
      for (const key of await redis.keys(`${isolation.redisPrefix}mem:search:*`)) await redis.del(key);
      const latencies: number[] = [];
      for (let i = 0; i < 40; i++) {
        const query = `${WORDS[(i + target) % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} item${(i * 13 + target) % 997}`;
        const started = performance.now();
        await bus.request(Endpoints.memorySearch, { meta: meta(), query, limit: 8 });
        latencies.push(performance.now() - started);
      }
      search[`chunks${target / 1000}k`] = summarize(latencies);
    }

    const figures = {
      context200Turns: { hot: summarize(hot), cold: summarize(cold) },
      search,
      promptTokens: {
        wholeHistory: fullHistory.totalTokens,
        withSummaryAndBudget: lean.totalTokens,
        summaryUsed: lean.sections.summary.items === 1,
        saving: Math.round((fullHistory.totalTokens / lean.totalTokens) * 100) / 100,
      },
    };
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${writeResult("memory", figures)}`);
    return figures;
  } finally {
    redis.disconnect();
    await db.end();
    await bus.close();
    await memory.stop();
    await proxy.stop();
    await fake.close();
    await dropIsolation(isolation).catch(() => undefined);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
