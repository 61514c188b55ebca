export {
  AgentConfig,
  AgentsSection,
  AgentVariant,
  agentOpenTo,
  agentRouteRules,
  agentsOpenTo,
  chooseAgentVariant,
  DEFAULT_AGENTS,
  GATEWAY_AGENT,
  GuardrailsConfig,
  isListedAgent,
  resolveAgents,
} from "./agents.js";
export { LimitsSection, TenantLimits } from "./limits.js";
export { ConfigError, interpolateEnv, parseConfig, readConfigFile } from "./load.js";
export { MemorySection } from "./memory.js";
export {
  ComplexityClassifier,
  ModelConfig,
  ModelsSection,
  ProviderConfig,
  RouteRule,
} from "./models.js";
export { DEFAULT_PRICES, defaultPriceOf, ModelPricing } from "./prices.js";
export { loadRuntimeConfig, RuntimeConfig } from "./runtime-config.js";
export type { Connections } from "./service-env.js";
export { ConnectionEnv, opsPortOf, opsPortVariable, parseServiceEnv } from "./service-env.js";
export type { ToolPolicyContext } from "./tools.js";
export { McpServerConfig, ToolPolicy, ToolsSection, toolPolicyAllows, WebhookToolConfig } from "./tools.js";
export type { StickyBy, StickyFields } from "./variants.js";
export { agentRuleName, chooseVariant, pickVariant, stickyKeyOf } from "./variants.js";
