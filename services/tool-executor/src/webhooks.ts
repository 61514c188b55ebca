import type { BlockList } from "node:net";
import type { WebhookToolConfig } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";
import { type AllowList, allowListOf, safeRequest } from "./safe-http.js";

const TRUST_ALL: AllowList = { ...allowListOf([]), all: true };

/** A webhook tool from the config file: arguments are sent as JSON (or as query for GET). */
export function createWebhookTool(
  name: string,
  config: WebhookToolConfig,
  env: NodeJS.ProcessEnv,
  allow: { hosts: Set<string>; ranges: BlockList },
) {
  const required = Array.isArray(config.parameters.required) ? (config.parameters.required as string[]) : [];
  const input = z.record(z.string(), z.unknown()).superRefine((value, context) => {
    for (const key of required) {
      if (!(key in value)) context.addIssue({ code: "custom", path: [key], message: "required" });
    }
  });
  const tool = defineTool({
    name,
    description: config.description,
    input,
    options: {
      timeoutMs: config.timeoutMs,
      sideEffects: config.sideEffects,
      cacheTtlSeconds: config.cacheTtlSeconds,
      cooldownSeconds: config.cooldownSeconds,
      maxConcurrency: config.maxConcurrency,
      costUsd: config.costUsd,
      personal: config.personal,
      idempotentByKey: config.idempotentByKey,
    },
    handler: async (args, context) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      for (const [header, variable] of Object.entries(config.headersFromEnv)) {
        const value = env[variable];
        if (value) headers[header] = value;
      }
      const url = new URL(config.url);
      let body: string | undefined;
      if (config.method === "GET" || config.method === "DELETE") {
        for (const [key, value] of Object.entries(args))
          url.searchParams.set(key, typeof value === "string" ? value : JSON.stringify(value));
      } else {
        body = JSON.stringify(args);
      }
      const response = await safeRequest(url.toString(), {
        method: config.method,
        headers: { ...headers, "idempotency-key": context.idempotencyKey ?? context.callId },
        ...(body === undefined ? {} : { body }),
        timeoutMs: Math.max(1, Math.min(config.timeoutMs, context.deadline - Date.now())),
        maxBytes: config.maxResponseBytes,
        allow: config.allowPrivateNetwork ? TRUST_ALL : allow,
        signal: context.signal,
      });
      if (response.status >= 400) {
        throw new RuntimeError(
          "upstream",
          `webhook answered ${response.status}: ${response.body.slice(0, 300)}`,
        );
      }
      try {
        return JSON.parse(response.body) as unknown;
      } catch {
        return response.body;
      }
    },
  });
  // the model sees the schema from the config, not the generic record
  return { tool, parameters: config.parameters };
}
