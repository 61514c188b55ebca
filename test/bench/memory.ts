/**
 * memory benchmark (service processes on the real NATS, Postgres, Redis):
 * - memory.context latency for a 200-turn thread, hot (Redis copy) and cold (Postgres);
 * - memory.search latency over 10k and 100k chunks (stock PostgreSQL: ternary signatures + exact
 *   re-rank), with retrieval quality: keyword hit rate, meaning-only hit rate and the
 *   vector leg's recall@8 against exact brute-force cosine;
 * - prompt tokens of a long conversation sent whole vs. with summary + retrieval + budget.
 */
import { pathToFileURL } from "node:url";
import { createTestBus } from "@agent-runtime/bus/testing";
import { type ChatMessage, Endpoints } from "@agent-runtime/contracts";
import { encodeVector, messageTokens, signature } from "@agent-runtime/memory";
import { fakeEmbedding, startFakeOpenAI } from "@agent-runtime/testkit";
import { Redis } from "ioredis";
import pg from "pg";
import { DATABASE_URL, dropIsolation, isolatedEnv, newIsolation, REDIS_URL } from "../support/isolation.js";
import { startServiceProcess } from "../support/processes.js";
import { summarize, writeResult } from "./stats.js";

const DIMENSIONS = 384;
const VOCABULARY = 3000;
const QUERIES = 40;
const word = (n: number) => `w${n}`;
/** Every word has a synonym no document uses: a query made of synonyms can only be found by meaning. */
const SYNONYMS = Array.from({ length: VOCABULARY }, (_, n) => [word(n), `s${n}`]);
const embed = (text: string) => fakeEmbedding(text, { dimensions: DIMENSIONS, synonyms: SYNONYMS });

/** Deterministic pseudo-random numbers. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

/** 24 words, skewed so some words are common and most are rare (like real text). */
function documentWords(seed: number): number[] {
  const next = random(seed * 7919 + 17);
  return Array.from({ length: 24 }, () => Math.floor(VOCABULARY * next() ** 2));
}

interface Sparse {
  index: Uint16Array;
  value: Float32Array;
}

function sparse(vector: number[]): Sparse {
  const entries = vector.flatMap((value, index) => (value === 0 ? [] : [[index, value] as const]));
  return {
    index: Uint16Array.from(entries.map(([index]) => index)),
    value: Float32Array.from(entries.map(([, value]) => value)),
  };
}

const dot = (query: number[], document: Sparse) => {
  let total = 0;
  for (let i = 0; i < document.index.length; i++) total += query[document.index[i]!]! * document.value[i]!;
  return total;
};

export async function run() {
  const fake = await startFakeOpenAI({ embeddingDimensions: DIMENSIONS, synonyms: SYNONYMS });
  fake.setHandler(() => ({
    content: "Summary: the customer discussed orders, refunds and billing; open question on invoice 42.",
  }));
  const isolation = newIsolation("benchmem");
  const env = isolatedEnv(isolation, {
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    MODEL_EMBED: "fake-embed",
    LOG_LEVEL: "warn",
  });
  const proxy = await startServiceProcess("model-proxy", { ...env, LOG_LEVEL: "info" });
  const memory = await startServiceProcess("memory", { ...env, LOG_LEVEL: "info" });
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
  const clearSearchCache = async () => {
    const keys = await redis.keys(`${isolation.redisPrefix}mem:search:*`);
    if (keys.length > 0) await redis.del(...keys);
  };
  try {
    // ---- a 200-turn conversation
    const thread = "thread-200";
    const conversation: ChatMessage[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const messages = Array.from({ length: 20 }, (_, index) => {
        const n = batch * 20 + index;
        const words = documentWords(n).map(word).join(" ");
        const message: ChatMessage =
          n % 2 === 0
            ? { role: "user", content: `turn ${n}: about ${words}?` }
            : { role: "assistant", content: `turn ${n}: ${words}. ${words.split(" ").reverse().join(" ")}.` };
        conversation.push(message);
        return { id: `${thread}:${n}`, message };
      });
      await bus.request(Endpoints.memoryAppend, { meta: meta(), threadId: thread, userId: "u1", messages });
    }
    const systemPrompt = "You are a helpful support agent. Answer briefly and cite order numbers.";
    const question: ChatMessage = {
      role: "user",
      content: "which plan did I say I am on, and is invoice 42 paid?",
    };
    const contextRequest = (retrieval = false) => ({
      meta: meta(),
      threadId: thread,
      agent: "assistant",
      systemPrompt,
      input: [question],
      budgetTokens: 4000,
      retrieval,
      userId: "u1",
    });
    const hot: number[] = [];
    const cold: number[] = [];
    const hotKey = `${isolation.redisPrefix}mem:thread:bench:${thread}`;
    await bus.request(Endpoints.memoryContext, contextRequest()); // warm-up
    for (let i = 0; i < 300; i++) {
      let started = performance.now();
      await bus.request(Endpoints.memoryContext, contextRequest());
      hot.push(performance.now() - started);
      await redis.del(hotKey);
      started = performance.now();
      await bus.request(Endpoints.memoryContext, contextRequest());
      cold.push(performance.now() - started);
    }

    // ---- prompt tokens: the whole conversation vs. summary + newest turns + retrieved facts
    for (let i = 0; i < 300; i++) {
      const row = await db.query(`SELECT summary_upto FROM "${isolation.schema}".threads WHERE id = $1`, [
        thread,
      ]);
      const last = await db.query(
        `SELECT max(seq) AS seq FROM "${isolation.schema}".messages WHERE thread_id = $1`,
        [thread],
      );
      if (Number(row.rows[0]?.summary_upto ?? 0) >= Number(last.rows[0]?.seq ?? 0) - 20) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const [index, fact] of [
      "The user is on the Business plan since March.",
      "Invoice 42 was paid by card on 3 May.",
      "The user prefers email over phone.",
      "Shipping address: 12 Harbour Street, Leith.",
    ].entries()) {
      await bus.request(Endpoints.memoryRemember, {
        meta: meta(),
        userId: "u1",
        kind: "profile",
        documentId: `fact-${index}`,
        text: fact,
      });
    }
    for (let i = 0; i < 100; i++) {
      const pending = await db.query(
        `SELECT count(*)::int AS n FROM "${isolation.schema}".chunks WHERE vector IS NULL`,
      );
      if (pending.rows[0].n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const whole = [
      { role: "system", content: systemPrompt } as ChatMessage,
      ...conversation,
      question,
    ].reduce((sum, message) => sum + messageTokens(message), 0);
    const lean = await bus.request(Endpoints.memoryContext, contextRequest(true));
    const withRetrieval: number[] = [];
    await clearSearchCache();
    for (let i = 0; i < 100; i++) {
      const started = performance.now();
      await bus.request(Endpoints.memoryContext, {
        ...contextRequest(true),
        input: [
          { role: "user" as const, content: `question ${i}: is invoice 42 paid and which plan am I on?` },
        ],
      });
      withRetrieval.push(performance.now() - started);
    }

    // ---- search over 10k and 100k chunks, bulk-inserted with their embeddings
    const search: Record<string, unknown> = {};
    const vectors: Sparse[] = [];
    const words: number[][] = [];
    let inserted = 0;
    for (const target of [10_000, 100_000]) {
      const insertStarted = performance.now();
      while (inserted < target) {
        const size = Math.min(2000, target - inserted);
        const ids: string[] = [];
        const texts: string[] = [];
        const buffers: Buffer[] = [];
        const bits: string[] = [];
        const nonzero: number[] = [];
        for (let k = 0; k < size; k++) {
          const n = inserted + k;
          const docWords = documentWords(1_000_000 + n);
          const text = `${docWords.map(word).join(" ")}.`;
          const vector = embed(text);
          ids.push(`doc-${n}`);
          texts.push(text);
          buffers.push(encodeVector(vector));
          const quantised = signature(vector);
          bits.push(quantised.bits);
          nonzero.push(quantised.nonzero);
          vectors.push(sparse(vector));
          words.push(docWords);
        }
        await db.query(
          `INSERT INTO "${isolation.schema}".documents (tenant, id, kind, text_hash)
           SELECT 'bench', id, 'document', md5(id) FROM unnest($1::text[]) id`,
          [ids],
        );
        await db.query(
          `INSERT INTO "${isolation.schema}".chunks (tenant, id, document_id, kind, position, text, text_hash, tokens, vector, bits, nonzero, dimensions)
           SELECT 'bench', id || ':1', id, 'document', 0, text, md5(text), 40, vector, bits, nonzero, ${DIMENSIONS}
           FROM unnest($1::text[], $2::text[], $3::bytea[], $4::varbit[], $5::int[]) AS c(id, text, vector, bits, nonzero)`,
          [ids, texts, buffers, bits, nonzero],
        );
        await db.query(
          `INSERT INTO "${isolation.schema}".chunk_signatures (tenant, chunk_id, kind, dimensions, bits, norm)
           SELECT 'bench', id || ':1', 'document', ${DIMENSIONS}, bits, sqrt(nonzero)
           FROM unnest($1::text[], $2::varbit[], $3::int[]) AS c(id, bits, nonzero)`,
          [ids, bits, nonzero],
        );
        inserted += size;
      }
      await db.query(`VACUUM ANALYZE "${isolation.schema}".chunks`);
      await db.query(`VACUUM ANALYZE "${isolation.schema}".chunk_signatures`);
      const insertSeconds = (performance.now() - insertStarted) / 1000;
      await clearSearchCache();
      const pick = random(target);
      const keyword: number[] = [];
      const meaning: number[] = [];
      let keywordFound = 0;
      let meaningFound = 0;
      let recallSum = 0;
      for (let i = 0; i < QUERIES; i++) {
        const source = Math.floor(pick() * target);
        // the three rarest words of the source document
        const rare = [...new Set(words[source]!)].sort((a, b) => b - a).slice(0, 3);
        let started = performance.now();
        const byKeyword = await bus.request(Endpoints.memorySearch, {
          meta: meta(),
          query: rare.map(word).join(" "),
          limit: 8,
        });
        keyword.push(performance.now() - started);
        if (byKeyword.hits.some((hit) => hit.documentId === `doc-${source}`)) keywordFound++;
        const synonymQuery = rare.map((n) => `s${n}`).join(" ");
        started = performance.now();
        const byMeaning = await bus.request(Endpoints.memorySearch, {
          meta: meta(),
          query: synonymQuery,
          limit: 8,
        });
        meaning.push(performance.now() - started);
        if (byMeaning.hits.some((hit) => hit.documentId === `doc-${source}`)) meaningFound++;
        // exact top 8 by cosine (above the service's 0.25 floor) against what the service returned
        const queryVector = embed(synonymQuery);
        const exact = vectors
          .map((vector, n) => ({ n, similarity: dot(queryVector, vector) }))
          .filter((entry) => entry.similarity >= 0.25)
          .sort((a, b) => b.similarity - a.similarity)
          .slice(0, 8);
        const returned = new Set(byMeaning.hits.map((hit) => hit.documentId));
        recallSum +=
          exact.length === 0
            ? 1
            : exact.filter((entry) => returned.has(`doc-${entry.n}`)).length / exact.length;
      }
      // a repeated query is answered from the Redis cache
      const cachedLatencies: number[] = [];
      for (let i = 0; i < 100; i++) {
        const started = performance.now();
        await bus.request(Endpoints.memorySearch, { meta: meta(), query: "w7 w8 w9", limit: 8 });
        cachedLatencies.push(performance.now() - started);
      }
      search[`chunks${target / 1000}k`] = {
        keyword: summarize(keyword),
        meaningOnly: summarize(meaning),
        cachedRepeat: summarize(cachedLatencies),
        keywordHitRateAt8: keywordFound / QUERIES,
        meaningHitRateAt8: meaningFound / QUERIES,
        vectorRecallAt8: Math.round((recallSum / QUERIES) * 1000) / 1000,
        bulkInsertSeconds: Math.round(insertSeconds * 10) / 10,
      };
    }

    const figures = {
      vectorSearch:
        "stock PostgreSQL 15: ternary bit signatures scanned with bit_count + exact float32 re-rank",
      embeddingDimensions: DIMENSIONS,
      context200Turns: {
        hot: summarize(hot),
        cold: summarize(cold),
        hotWithRetrieval: summarize(withRetrieval),
      },
      search,
      promptTokens: {
        wholeConversation: whole,
        withSummaryRetrievalBudget: lean.totalTokens,
        sections: Object.fromEntries(
          Object.entries(lean.sections).map(([name, section]) => [name, section.tokens]),
        ),
        retrievedFacts: lean.sections.retrieved.items,
        saving: Math.round((whole / lean.totalTokens) * 100) / 100,
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
