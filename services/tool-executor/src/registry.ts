import { type ToolPolicyContext, type ToolsSection, toolPolicyAllows } from "@agent-runtime/config";
import type { ToolDescriptor, ToolListRequest, ToolRegistration } from "@agent-runtime/contracts";
import { describeTool, type ToolDefinition } from "@agent-runtime/tools";
import type { RegisteredTool } from "./executor.js";

/** Every tool the executor knows: local ones and those other services announced. */
export class ToolRegistry {
  private readonly local = new Map<string, RegisteredTool>();
  private readonly remote = new Map<string, RegisteredTool>();

  constructor(private readonly tools: ToolsSection["tools"]) {}

  addLocal(
    definition: ToolDefinition,
    kind: ToolDescriptor["kind"],
    parameters?: Record<string, unknown>,
  ): void {
    const override = this.tools.overrides[definition.name] ?? {};
    const options = { ...definition.options, ...override } as ToolDefinition["options"];
    const tool = { ...definition, options };
    const descriptor = describeTool(tool, kind);
    if (parameters)
      descriptor.spec = { ...descriptor.spec, function: { ...descriptor.spec.function, parameters } };
    this.local.set(definition.name, {
      descriptor,
      definition: tool,
      maxConcurrency: options.maxConcurrency,
      cooldownSeconds: options.cooldownSeconds,
      maxResultChars: options.maxResultChars,
    });
  }

  register(registration: ToolRegistration): void {
    const descriptor = registration.descriptor;
    if (this.local.has(descriptor.name)) return; // local tools cannot be shadowed
    this.remote.set(descriptor.name, {
      descriptor: { ...descriptor, kind: "nats" },
      expiresAt: Date.now() + registration.ttlSeconds * 1000,
      maxConcurrency: 64,
      cooldownSeconds: 0,
      maxResultChars: 16_000,
    });
  }

  get(name: string): RegisteredTool | undefined {
    const local = this.local.get(name);
    if (local) return local;
    const remote = this.remote.get(name);
    if (remote && (remote.expiresAt ?? 0) > Date.now()) return remote;
    return undefined;
  }

  localNames(): string[] {
    return [...this.local.keys()];
  }

  /** Tools offered for a context, after the selection policy. */
  list(request: ToolListRequest): ToolDescriptor[] {
    const all = [
      ...this.local.values(),
      ...[...this.remote.values()].filter((tool) => (tool.expiresAt ?? 0) > Date.now()),
    ];
    return all
      .map((tool) => tool.descriptor)
      .filter((descriptor) => !request.names || request.names.includes(descriptor.name))
      .filter((descriptor) => this.allowed(descriptor.name, request));
  }

  /** Whether the tool policies let `name` be offered and called in this context. */
  allowed(name: string, context: ToolPolicyContext): boolean {
    return toolPolicyAllows(this.tools.policies, name, context);
  }
}
