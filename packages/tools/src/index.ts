export type { ToolCallContext, ToolDefinition, ToolOptions } from "./define-tool.js";
export { DEFAULT_TOOL_OPTIONS, defineTool, describeTool, toolParameters, toolSpec } from "./define-tool.js";
export type { ServedTool } from "./serve-tool.js";
export { remoteToolSubject, serveTool } from "./serve-tool.js";
