import { encode } from "gpt-tokenizer/encoding/o200k_base";
import { contentText } from "./fake-openai.js";
import { PromptPrefixCache } from "./prompt-cache.js";
import type { ChatCompletionRequestBody, ChatHandler, RecordedRequest, ScriptStep } from "./types.js";

/** USD per 1M tokens, like a provider's price list. */
export interface ModelPrice {
  input: number;
  cachedInput: number;
  output: number;
  /** Which grade of model this is: hard questions need `strong` (or a plan). */
  grade: "fast" | "strong" | "embedding";
  /** Added to every answer of this model (a strong model is slower). */
  latencyMs?: number;
}

/** A cheap fast model, an expensive strong model and an embedding model, at gpt-4o-mini / gpt-4o prices. */
export const DEFAULT_PRICES: Record<string, ModelPrice> = {
  "fast-mini": { input: 0.15, cachedInput: 0.075, output: 0.6, grade: "fast", latencyMs: 5 },
  "strong-large": { input: 2.5, cachedInput: 1.25, output: 10, grade: "strong", latencyMs: 15 },
  "embed-small": { input: 0.02, cachedInput: 0.02, output: 0, grade: "embedding" },
};

/** A tool call the graded model makes for a question before it answers. */
export interface GradedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * What the graded model knows about one question (named by a `[[q:<key>]]` tag in the user's
 * message): the facts the prompt must hold for the answer to be right, whether it is hard, and
 * the tools and the delegate a good model calls before it answers.
 */
export interface GradedQuestion {
  key: string;
  facts: string[];
  hard?: boolean;
  tools?: GradedToolCall[];
  /** The specialist it hands a subtask to; the subtask carries the tag `[[q:<key>/sub]]`. */
  delegate?: { agent: string };
  answer?: string;
}

/** One chat call as the grading provider billed it. */
export interface GradedCall {
  key: string | null;
  kind: "answer" | "tools" | "delegate" | "plan" | "summarize" | "classify" | "subtask" | "other";
  model: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  usd: number;
  verdict?: "correct" | "wrong";
  missing?: string[];
  /** When the provider answered (epoch ms). */
  at: number;
}

export interface GradingProviderOptions {
  questions: Iterable<GradedQuestion>;
  prices?: Record<string, ModelPrice>;
  /**
   * Whether repeated prompt prefixes are billed as cached input (default true). Off, every prompt
   * token is paid in full, as if each prompt's prefix differed from every earlier one.
   */
  promptCaching?: boolean;
}

export interface GradingProvider {
  /** The handler to give `startFakeOpenAI` (`defaultHandler` or `setHandler`). */
  handler: ChatHandler;
  readonly calls: GradedCall[];
  readonly prices: Record<string, ModelPrice>;
  /** Forgets the ledger and the provider's prompt cache (a fresh run against a cold provider). */
  reset(): void;
}

export const QUESTION_TAG = /\[\[q:([A-Za-z0-9_.:/-]+)\]\]/;
/** How an answer states its grade: `[[verdict:<key>:correct]]` or `[[verdict:<key>:wrong]]`. */
export const VERDICT_TAG = /\[\[verdict:([A-Za-z0-9_.:/-]+?):(correct|wrong)\]\]/;
/** Fact codes a competent summarizer keeps (`LOCKER-5521`, `ORD-1042`, …). */
const FACT_CODE = /\b[A-Z][A-Z0-9]{1,}-[A-Z0-9]{3,}\b/;
const SUMMARY_SYSTEM = /running summary/i;
const PLAN_SYSTEM = /Break the user's request into/;

export function usdOf(price: ModelPrice, prompt: number, cached: number, completion: number): number {
  return ((prompt - cached) * price.input + cached * price.cachedInput + completion * price.output) / 1e6;
}

/** The prompt as the provider tokenizes it: tools first, then each message with its role. */
export function promptText(body: ChatCompletionRequestBody): string {
  const parts: string[] = [];
  if (body.tools?.length) parts.push(`<|tools|>${JSON.stringify(body.tools)}`);
  for (const message of body.messages) {
    let text = `<|${message.role}|>${contentText(message.content)}`;
    for (const call of message.tool_calls ?? [])
      text += `<|call|>${call.function.name}${call.function.arguments}`;
    parts.push(text);
  }
  return parts.join("\n");
}

function lastUserText(body: ChatCompletionRequestBody): string {
  for (let index = body.messages.length - 1; index >= 0; index--) {
    const message = body.messages[index]!;
    if (message.role === "user") return contentText(message.content);
  }
  return "";
}

/** Names of the tools already called in this turn (after the last user message). */
function calledThisTurn(body: ChatCompletionRequestBody): Set<string> {
  const names = new Set<string>();
  for (let index = body.messages.length - 1; index >= 0; index--) {
    const message = body.messages[index]!;
    if (message.role === "user") break;
    for (const call of message.tool_calls ?? []) names.add(call.function.name);
  }
  return names;
}

/** Sentences of `text` that hold a fact code, each once. */
function factSentences(text: string): string[] {
  const sentences = text.split(/(?<=[.!?])\s+|\n+/);
  const kept = new Set<string>();
  for (const sentence of sentences) {
    if (FACT_CODE.test(sentence))
      kept.add(
        sentence
          .replace(QUESTION_TAG, "")
          .replace(/^\w+:\s*/, "")
          .trim(),
      );
  }
  return [...kept];
}

/**
 * An opt-in handler for the fake provider that behaves like a priced, graded model: prompt tokens
 * counted with the real tokenizer (o200k), a price per model, OpenAI-style cached tokens for a
 * repeated prefix of ≥ 1,024 tokens, and a verdict in each answer to a tagged question: correct
 * only when every fact it needs is in the prompt it received and, for a hard question, when a
 * strong model answered or the prompt carries a plan. Summaries keep every sentence with a fact
 * code; plans are short JSON.
 */
export function createGradingProvider(options: GradingProviderOptions): GradingProvider {
  const prices = options.prices ?? DEFAULT_PRICES;
  const questions = new Map<string, GradedQuestion>();
  for (const question of options.questions) questions.set(question.key, question);
  const cache = new PromptPrefixCache();
  const promptCaching = options.promptCaching ?? true;
  const calls: GradedCall[] = [];

  const handler: ChatHandler = (body) => {
    const text = promptText(body);
    const tokens = encode(text);
    const promptTokens = tokens.length + 3;
    const price = prices[body.model];
    if (!price) return { content: `unknown model ${body.model}`, usage: { prompt_tokens: promptTokens } };
    const cachedTokens = promptCaching ? cache.lookup(body.model, tokens) : 0;
    const system = contentText(body.messages.find((message) => message.role === "system")?.content);
    const reply = decide(body, system, text, price);
    const completionText =
      (reply.step.content ?? "") + (reply.step.toolCalls ?? []).map((call) => JSON.stringify(call)).join("");
    const completionTokens = Math.max(1, encode(completionText).length);
    calls.push({
      ...reply.call,
      model: body.model,
      promptTokens,
      cachedTokens,
      completionTokens,
      usd: usdOf(price, promptTokens, cachedTokens, completionTokens),
      at: Date.now(),
    });
    return {
      ...reply.step,
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        cached_tokens: cachedTokens,
      },
      ...(price.latencyMs ? { latencyMs: price.latencyMs } : {}),
    };
  };

  function decide(
    body: ChatCompletionRequestBody,
    system: string,
    text: string,
    price: ModelPrice,
  ): { step: ScriptStep; call: Pick<GradedCall, "key" | "kind" | "verdict" | "missing"> } {
    if (SUMMARY_SYSTEM.test(system)) {
      const kept = factSentences(lastUserText(body));
      return {
        step: { content: kept.length > 0 ? kept.join(" ") : "Small talk only." },
        call: { key: null, kind: "summarize" },
      };
    }
    const tag = QUESTION_TAG.exec(lastUserText(body));
    const key = tag?.[1] ?? null;
    if (PLAN_SYSTEM.test(system)) {
      return {
        step: {
          content: JSON.stringify({ steps: ["Look up what is needed", "Ask the specialist", "Answer"] }),
        },
        call: { key, kind: "plan" },
      };
    }
    if (!key) return { step: { content: "Noted." }, call: { key: null, kind: "other" } };
    if (key.endsWith("/sub")) {
      const parent = key.slice(0, -"/sub".length);
      return {
        step: { content: `Specialist report for ${parent}: checked.` },
        call: { key: parent, kind: "subtask" },
      };
    }
    const question = questions.get(key);
    if (!question) return { step: { content: `No such question ${key}.` }, call: { key, kind: "other" } };
    const called = calledThisTurn(body);
    const offered = new Set((body.tools ?? []).map((tool) => tool.function.name));
    const pending = (question.tools ?? []).filter((tool) => !called.has(tool.name) && offered.has(tool.name));
    if (pending.length > 0) {
      return {
        step: { toolCalls: pending.map((tool) => ({ name: tool.name, arguments: tool.arguments })) },
        call: { key, kind: "tools" },
      };
    }
    if (question.delegate && !called.has("delegate") && offered.has("delegate")) {
      return {
        step: {
          toolCalls: [
            {
              name: "delegate",
              arguments: { agent: question.delegate.agent, task: `Check the details of [[q:${key}/sub]].` },
            },
          ],
        },
        call: { key, kind: "delegate" },
      };
    }
    const missing = question.facts.filter((fact) => !text.includes(fact));
    if (question.tools) {
      for (const tool of question.tools) if (!called.has(tool.name)) missing.push(`tool ${tool.name}`);
    }
    if (question.delegate && !text.includes(`Specialist report for ${key}`)) missing.push("delegate report");
    if (question.hard && price.grade !== "strong" && !text.includes("Follow this plan"))
      missing.push("a strong model or a plan");
    const verdict = missing.length === 0 ? "correct" : "wrong";
    const kind = /classify|extract|route/i.test(system) ? "classify" : "answer";
    return {
      step: { content: `${question.answer ?? "Here is the answer."} [[verdict:${key}:${verdict}]]` },
      call: { key, kind, verdict, ...(missing.length > 0 ? { missing } : {}) },
    };
  }

  return {
    handler,
    calls,
    prices,
    reset: () => {
      calls.length = 0;
      cache.clear();
    },
  };
}

/** What the embedding calls among recorded requests cost, counted with the real tokenizer. */
export function embeddingBill(
  requests: readonly RecordedRequest[],
  prices: Record<string, ModelPrice> = DEFAULT_PRICES,
): { calls: number; tokens: number; usd: number } {
  let tokens = 0;
  let usd = 0;
  let calls = 0;
  for (const request of requests) {
    if (request.path !== "/v1/embeddings" || typeof request.body !== "object" || request.body === null)
      continue;
    const body = request.body as { input?: unknown; model?: string };
    const inputs =
      typeof body.input === "string" ? [body.input] : Array.isArray(body.input) ? body.input : [];
    const count = inputs.reduce<number>((sum, input) => sum + encode(String(input)).length, 0);
    calls++;
    tokens += count;
    usd += (count * (prices[body.model ?? ""]?.input ?? 0)) / 1e6;
  }
  return { calls, tokens, usd };
}

/** The verdict an answer states for its question, if any. */
export function verdictOf(answer: string): { key: string; verdict: "correct" | "wrong" } | undefined {
  const match = VERDICT_TAG.exec(answer);
  return match ? { key: match[1]!, verdict: match[2] as "correct" | "wrong" } : undefined;
}
