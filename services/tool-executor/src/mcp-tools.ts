import type { McpServerConfig } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";
import { defineTool, type ToolDefinition } from "@agent-runtime/tools";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { z } from "zod";

/** A tool of an MCP server, as the executor offers it. */
export interface McpTool {
  definition: ToolDefinition;
  /** The server's JSON Schema of its arguments: what the model sees. */
  parameters: Record<string, unknown>;
}

interface ListedTool {
  name: string;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
  annotations?: { readOnlyHint?: boolean | undefined } | undefined;
}

interface CallResult {
  content?: unknown;
  structuredContent?: unknown;
  isError?: boolean;
}

const NAME_ALLOWED = /[^A-Za-z0-9_-]/g;

/** The name a server's tool is offered under: the server's prefix plus its name, in the characters tool names allow. */
export function mcpToolName(prefix: string, name: string): string {
  return `${prefix}${name}`.replace(NAME_ALLOWED, "_").slice(0, 64);
}

/** The arguments schema as zod, so the executor validates calls before they reach the server. */
function inputOf(schema: Record<string, unknown>): z.ZodType {
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    // a schema zod cannot read: the server validates its own arguments
    return z.record(z.string(), z.unknown());
  }
}

function textOf(content: unknown): string | undefined {
  if (!Array.isArray(content) || content.length === 0) return undefined;
  const texts: string[] = [];
  for (const part of content as { type?: unknown; text?: unknown }[]) {
    if (part?.type !== "text" || typeof part.text !== "string") return undefined;
    texts.push(part.text);
  }
  return texts.join("\n");
}

/** What a call answered, as the tool's result: structured content, else its text, else its parts. */
export function mcpResultOf(result: CallResult, tool: string): unknown {
  if (result.isError) {
    throw new RuntimeError("upstream", textOf(result.content) ?? `${tool} reported an error`);
  }
  if (result.structuredContent !== undefined) return result.structuredContent;
  return textOf(result.content) ?? result.content ?? null;
}

/**
 * One configured MCP server: connects (stdio or Streamable HTTP), lists its tools and runs calls.
 * A lost connection (the process exited, the endpoint went away) is made again on the next call.
 */
export class McpToolSource {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;

  constructor(
    readonly server: string,
    private readonly config: McpServerConfig,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
  ) {}

  /** Where the server is, for logs: its command or URL. */
  get location(): string {
    return this.config.url ?? [this.config.command, ...this.config.args].join(" ");
  }

  /** Connects and lists the server's tools (the allow-list applied) as tools the executor can run. */
  async tools(): Promise<McpTool[]> {
    const client = await this.connected();
    const listed: ListedTool[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : {}, {
        timeout: this.config.connectTimeoutMs,
      });
      listed.push(...(page.tools as ListedTool[]));
      cursor = page.nextCursor;
    } while (cursor);
    const allowed = this.config.tools;
    if (allowed) {
      const missing = allowed.filter((name) => !listed.some((tool) => tool.name === name));
      if (missing.length > 0)
        this.logger.warn(
          { mcpServer: this.server, missing },
          "MCP server does not offer tools its allow-list names",
        );
    }
    return listed.filter((tool) => !allowed || allowed.includes(tool.name)).map((tool) => this.toolOf(tool));
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  private toolOf(listed: ListedTool): McpTool {
    const { $schema: _ignored, ...parameters } = listed.inputSchema;
    const config = this.config;
    const definition = defineTool({
      name: mcpToolName(config.toolPrefix, listed.name),
      description: listed.description ?? `${listed.name} (MCP server ${this.server})`,
      input: inputOf(parameters),
      options: {
        timeoutMs: config.timeoutMs,
        maxConcurrency: config.maxConcurrency,
        cooldownSeconds: config.cooldownSeconds,
        cacheTtlSeconds: config.cacheTtlSeconds,
        sideEffects: config.sideEffects ?? listed.annotations?.readOnlyHint !== true,
        costUsd: config.costUsd,
        personal: config.personal,
      },
      handler: async (args, context) => {
        const client = await this.connected();
        const timeout = Math.max(1, Math.min(config.timeoutMs, context.deadline - Date.now()));
        try {
          const result = await client.callTool(
            { name: listed.name, arguments: args as Record<string, unknown> },
            undefined,
            { signal: context.signal, timeout, maxTotalTimeout: timeout },
          );
          return mcpResultOf(result as CallResult, listed.name);
        } catch (error) {
          if (error instanceof RuntimeError) throw error;
          throw new RuntimeError(
            "upstream",
            `MCP server ${this.server} failed: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error },
          );
        }
      },
    });
    return { definition, parameters };
  }

  private async connected(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const client = new Client({ name: "agent-runtime-tool-executor", version: "0.1.0" });
    const transport = this.transport();
    client.onclose = () => {
      if (this.client === client) this.client = undefined;
    };
    client.onerror = (error) =>
      this.logger.debug({ mcpServer: this.server, err: error.message }, "MCP transport error");
    try {
      await client.connect(transport, { timeout: this.config.connectTimeoutMs });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
    this.client = client;
    return client;
  }

  private transport(): Transport {
    const config = this.config;
    if (config.url) {
      const headers: Record<string, string> = { ...config.headers };
      for (const [header, variable] of Object.entries(config.headersFromEnv)) {
        const value = this.env[variable];
        if (value) headers[header] = value;
      }
      return new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers } });
    }
    const transport = new StdioClientTransport({
      command: config.command!,
      args: config.args,
      env: { ...getDefaultEnvironment(), ...config.env },
      ...(config.cwd ? { cwd: config.cwd } : {}),
      stderr: "pipe",
    });
    transport.stderr?.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line.trim()) this.logger.info({ mcpServer: this.server }, line.slice(0, 2000));
    });
    return transport;
  }
}
