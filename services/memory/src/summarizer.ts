import type { Bus } from "@agent-runtime/bus";
import { ChatMessage, Endpoints, type RequestMeta, textOf } from "@agent-runtime/contracts";
import type pg from "pg";
import type { ThreadStore } from "./thread-store.js";
import { countText } from "./tokens.js";

/** Most transcript tokens folded by one model call; a long backlog takes several calls. */
const FOLD_TOKENS = 6000;
const MAX_ROUNDS = 8;
const MESSAGE_CHARS = 2000;

const INSTRUCTIONS =
  "You maintain the running summary of a conversation. Merge the previous summary with the new turns. Keep facts, names, numbers, decisions, user preferences and open questions; drop pleasantries. At most 200 words.";

function render(message: ChatMessage): string {
  let text: string;
  if (message.role === "assistant" && message.tool_calls?.length) {
    const calls = message.tool_calls
      .map((call) => `${call.function.name}(${call.function.arguments})`)
      .join(", ");
    text = `assistant called ${calls}${message.content ? `: ${textOf(message.content)}` : ""}`;
  } else text = `${message.role}: ${textOf(message.content ?? "")}`;
  return text.length > MESSAGE_CHARS ? `${text.slice(0, MESSAGE_CHARS)} …` : text;
}

/** Folds older turns of a thread into its running summary (the `summarize` job). */
export class Summarizer {
  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly threads: ThreadStore,
    private readonly keepRecent: number,
  ) {}

  /** Summarises until only the newest turns are left; returns the number of model calls. */
  async summarize(tenant: string, threadId: string, meta: RequestMeta): Promise<number> {
    let rounds = 0;
    while (rounds < MAX_ROUNDS && (await this.foldOnce(tenant, threadId, meta))) rounds++;
    return rounds;
  }

  private async foldOnce(tenant: string, threadId: string, meta: RequestMeta): Promise<boolean> {
    const thread = await this.pool.query<{ summary: string | null; summary_upto: string }>(
      "SELECT summary, summary_upto FROM threads WHERE tenant = $1 AND id = $2",
      [tenant, threadId],
    );
    const row = thread.rows[0];
    if (!row) return false; // forgotten meanwhile
    const pending = await this.pool.query<{ seq: string; message: unknown; tokens: number }>(
      "SELECT seq, message, tokens FROM messages WHERE tenant = $1 AND thread_id = $2 AND seq > $3 ORDER BY seq",
      [tenant, threadId, row.summary_upto],
    );
    const rows = pending.rows.map((entry) => ({
      seq: entry.seq,
      tokens: entry.tokens,
      message: ChatMessage.parse(entry.message),
    }));
    // keep the newest turns verbatim; never split an assistant call from its tool results
    let cut = rows.length - this.keepRecent;
    let folded = 0;
    for (let index = 0; index < cut; index++) {
      folded += rows[index]!.tokens;
      if (folded > FOLD_TOKENS && index > 0) {
        cut = index;
        break;
      }
    }
    while (cut > 0 && rows[cut]?.message.role === "tool") cut--;
    if (cut <= 0) return false;
    const batch = rows.slice(0, cut);
    const reply = await this.bus.request(Endpoints.modelChat, {
      meta: { ...meta, threadId, deadline: Date.now() + 120_000 },
      // the route decides the tier (routine by default: the fast tier)
      task: "summarize",
      temperature: 0,
      maxTokens: 600,
      messages: [
        { role: "system", content: INSTRUCTIONS },
        {
          role: "user",
          content: `Previous summary:\n${row.summary ?? "(none)"}\n\nNew turns:\n${batch.map((entry) => render(entry.message)).join("\n")}`,
        },
      ],
    });
    const summary = textOf(reply.message.content ?? "").trim();
    if (!summary) throw new Error("the model returned an empty summary");
    const upto = batch[batch.length - 1]!.seq;
    // only moves forward: a slower job that read an older state loses
    const updated = await this.pool.query(
      `UPDATE threads SET summary = $3, summary_upto = $4, summary_tokens = $5, updated_at = now()
       WHERE tenant = $1 AND id = $2 AND summary_upto = $6`,
      [tenant, threadId, summary, upto, countText(summary), row.summary_upto],
    );
    await this.threads.invalidate(tenant, threadId);
    return (updated.rowCount ?? 0) > 0;
  }
}
