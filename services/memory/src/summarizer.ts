import type { Bus } from "@agent-runtime/bus";
import { ChatMessage, Endpoints, type RequestMeta, textOf } from "@agent-runtime/contracts";
import type pg from "pg";
import type { ThreadStore } from "./thread-store.js";
import { countText } from "./tokens.js";

function render(message: ChatMessage): string {
  if (message.role === "assistant" && message.tool_calls?.length) {
    const calls = message.tool_calls
      .map((call) => `${call.function.name}(${call.function.arguments})`)
      .join(", ");
    return `assistant called ${calls}${message.content ? `: ${textOf(message.content)}` : ""}`;
  }
  return `${message.role}: ${textOf(message.content ?? "")}`;
}

/** Folds older turns of a thread into its running summary (a `memory.jobs` job). */
export class Summarizer {
  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly threads: ThreadStore,
    private readonly keepRecent: number,
  ) {}

  async summarize(tenant: string, threadId: string, meta: RequestMeta): Promise<boolean> {
    const thread = await this.pool.query<{ summary: string | null; summary_upto: string }>(
      "SELECT summary, summary_upto FROM threads WHERE tenant = $1 AND id = $2",
      [tenant, threadId],
    );
    const row = thread.rows[0];
    if (!row) return false;
    const pending = await this.pool.query<{ seq: string; message: unknown }>(
      "SELECT seq, message FROM messages WHERE tenant = $1 AND thread_id = $2 AND seq > $3 ORDER BY seq",
      [tenant, threadId, row.summary_upto],
    );
    const rows = pending.rows;
    // keep the newest turns verbatim; never split an assistant turn from its tool results
    let cut = rows.length - this.keepRecent;
    while (cut > 0 && ChatMessage.parse(rows[cut]?.message).role === "tool") cut--;
    if (cut <= 0) return false;
    const folded = rows.slice(0, cut);
    const transcript = folded.map((entry) => render(ChatMessage.parse(entry.message))).join("\n");
    const reply = await this.bus.request(Endpoints.modelChat, {
      meta: { ...meta, threadId },
      task: "summarize",
      tier: "fast",
      temperature: 0,
      maxTokens: 600,
      messages: [
        {
          role: "system",
          content:
            "You maintain the running summary of a conversation. Merge the previous summary with the new turns. Keep facts, names, numbers, decisions and open questions; drop pleasantries. At most 200 words.",
        },
        {
          role: "user",
          content: `Previous summary:\n${row.summary ?? "(none)"}\n\nNew turns:\n${transcript}`,
        },
      ],
    });
    const summary = textOf(reply.message.content ?? "").trim();
    if (!summary) throw new Error("the model returned an empty summary");
    const upto = folded[folded.length - 1]!.seq;
    await this.pool.query(
      `UPDATE threads SET summary = $3, summary_upto = $4, summary_tokens = $5, updated_at = now()
       WHERE tenant = $1 AND id = $2 AND summary_upto < $4`,
      [tenant, threadId, summary, upto, countText(summary)],
    );
    await this.threads.invalidate(tenant, threadId);
    return true;
  }
}
