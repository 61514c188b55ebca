import type { BlockList } from "node:net";
import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";
import { safeRequest } from "../safe-http.js";

export function createHttpGet(allow: { hosts: Set<string>; ranges: BlockList }, maxBytes = 256 * 1024) {
  return defineTool({
    name: "http_get",
    description:
      "Fetches a public web page or API over HTTP(S) GET and returns its status and text (size-limited).",
    input: z.object({ url: z.string().url().describe("absolute http(s) URL") }),
    output: z.object({
      status: z.number(),
      contentType: z.string(),
      body: z.string(),
      truncated: z.boolean(),
    }),
    options: { timeoutMs: 10_000, cacheTtlSeconds: 60, maxConcurrency: 32, personal: false },
    handler: async ({ url }, context) => {
      const response = await safeRequest(url, {
        timeoutMs: Math.max(1, Math.min(10_000, context.deadline - Date.now())),
        maxBytes,
        allow,
        signal: context.signal,
      });
      return {
        status: response.status,
        contentType: response.headers["content-type"] ?? "",
        body: response.body,
        truncated: response.truncated,
      };
    },
  });
}
