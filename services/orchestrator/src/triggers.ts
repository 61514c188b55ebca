import { type AgentConfig, agentsOpenTo } from "@agent-runtime/config";
import type { CloudEvent } from "@agent-runtime/contracts";

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}

/** Agents whose triggers match an event type (globs with `*`), visible to the tenant. */
export function matchingAgents(agents: Record<string, AgentConfig>, type: string, tenant: string): string[] {
  return agentsOpenTo(agents, tenant)
    .filter(([, agent]) => agent.triggers.some((trigger) => globToRegExp(trigger).test(type)))
    .map(([name]) => name);
}

/** The user message a triggered run starts from. */
export function renderEvent(event: CloudEvent): string {
  const data = event.data === undefined ? "" : `\ndata: ${JSON.stringify(event.data).slice(0, 8000)}`;
  return `An event arrived.\ntype: ${event.type}\nsource: ${event.source}${event.subject ? `\nsubject: ${event.subject}` : ""}\nid: ${event.id}${data}`;
}
