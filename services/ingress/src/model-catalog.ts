import type { Bus } from "@agent-runtime/bus";
import {
  type AgentConfig,
  agentOpenTo,
  agentsOpenTo,
  GATEWAY_AGENT,
  isListedAgent,
} from "@agent-runtime/config";
import { Endpoints, type ModelListReply, RuntimeError } from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import type { RouteDeps } from "./route-deps.js";

const FRESH_MS = 30_000;
const ASK_TIMEOUT_MS = 3_000;

type ServedModel = ModelListReply["models"][number];

/** What a request's `model` names: an agent, or a model a plain (gateway) turn runs on. */
export interface ChatTarget {
  agent: string;
  agentConfig: AgentConfig;
  /** The provider model the run is pinned to (the request named a model, not an agent). */
  model?: string;
}

/**
 * The names a client may put in `model`: the agents (each tenant sees those open to it) and the
 * models the model proxy serves (asked over `model.list`, kept for 30 s). An agent's name wins over
 * a model of the same name.
 */
export class ModelCatalog {
  private served: { at: number; reply: ModelListReply } | undefined;
  private asking: Promise<ModelListReply> | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly agents: Record<string, AgentConfig>,
    readonly defaultAgent: string,
  ) {}

  /** The agents open to `tenant`. */
  agentsFor(tenant: string): [string, AgentConfig][] {
    return agentsOpenTo(this.agents, tenant);
  }

  /** The models the proxy serves (the last list known when it cannot be asked; throws if none is). */
  async models(tenant: string): Promise<ModelListReply> {
    if (this.served && Date.now() - this.served.at < FRESH_MS) return this.served.reply;
    this.asking ??= this.bus
      .request(Endpoints.modelList, {
        meta: { v: 1, tenant, requestId: `models:${Date.now()}`, deadline: Date.now() + ASK_TIMEOUT_MS },
      })
      .then((reply) => {
        this.served = { at: Date.now(), reply };
        return reply;
      })
      .finally(() => {
        this.asking = undefined;
      });
    try {
      return await this.asking;
    } catch (error) {
      if (this.served) return this.served.reply;
      throw error;
    }
  }

  /** The model named `name`, if the proxy serves one. */
  async model(tenant: string, name: string): Promise<ServedModel | undefined> {
    return (await this.models(tenant)).models.find((model) => model.name === name);
  }

  /**
   * The agent a chat request's `model` names, or, for a served model, the gateway agent pinned to
   * it (a plain turn: the client's messages and tools only); `not_found` when it names neither.
   */
  async chatTarget(tenant: string, name: string): Promise<ChatTarget> {
    const agent = isListedAgent(name) ? this.agents[name] : undefined;
    if (agent && agentOpenTo(agent, tenant)) return { agent: name, agentConfig: agent };
    const model = agent ? undefined : await this.model(tenant, name).catch(() => undefined);
    const gateway = this.agents[GATEWAY_AGENT];
    if (model && gateway) {
      if (!model.capabilities.some((capability) => capability !== "embeddings")) {
        throw new RuntimeError("validation", `"${name}" is an embedding model; use POST /v1/embeddings`, {
          retryable: false,
          details: [{ path: "model", message: "embedding model" }],
        });
      }
      return { agent: GATEWAY_AGENT, agentConfig: gateway, model: name };
    }
    throw new RuntimeError(
      "not_found",
      `no agent or model named "${name}"; GET /v1/models lists the agents and models`,
      { retryable: false, details: [{ path: "model", message: "unknown agent or model" }] },
    );
  }
}

function modelEntry(id: string, ownedBy: string, extra: Record<string, unknown> = {}) {
  return { id, object: "model" as const, created: 0, owned_by: ownedBy, ...extra };
}

/**
 * `GET /v1/models` (the agents open to the caller's tenant, then the models) and
 * `GET /v1/models/:id`, OpenAI wire format. Agents are owned by `agent-runtime`, models by their
 * provider; the list holds the agents alone while the model proxy cannot be asked.
 */
export function registerModelRoutes(app: FastifyInstance, deps: RouteDeps, catalog: ModelCatalog): void {
  const listFor = async (tenant: string) => {
    const agents = catalog
      .agentsFor(tenant)
      .map(([id, agent]) =>
        modelEntry(id, "agent-runtime", { description: agent.description, kind: "agent" }),
      );
    const served = await catalog.models(tenant).catch(() => undefined);
    const agentNames = new Set(agents.map((agent) => agent.id));
    const models = (served?.models ?? [])
      .filter((model) => !agentNames.has(model.name))
      .map((model) =>
        modelEntry(model.name, model.provider, { kind: "model", capabilities: model.capabilities }),
      );
    return [...agents, ...models];
  };
  app.get("/v1/models", async (request) => {
    const key = await deps.authenticate(request, "chat");
    return { object: "list", data: await listFor(key.tenant) };
  });
  app.get("/v1/models/:id", async (request) => {
    const key = await deps.authenticate(request, "chat");
    const { id } = request.params as { id: string };
    const found = (await listFor(key.tenant)).find((entry) => entry.id === id);
    if (!found) {
      throw new RuntimeError("not_found", `no agent or model named "${id.slice(0, 100)}"`, {
        retryable: false,
      });
    }
    return found;
  });
}
