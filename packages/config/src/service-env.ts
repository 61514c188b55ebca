import { z } from "zod";
import { ConfigError } from "./load.js";

/** Environment every service shares: where NATS, Postgres and Redis are, and its namespaces. */
export const ConnectionEnv = {
  /** One server or a comma-separated list of a cluster's servers. */
  NATS_URL: z
    .string()
    .default("nats://127.0.0.1:4222")
    .refine(
      (value) => value.split(",").every((server) => /^\S+$/.test(server.trim())),
      "a NATS URL (nats://host:port) or a comma-separated list of them, none empty",
    ),
  /** Replica count of every JetStream stream the service creates: 1 on one server, 3 on a cluster. */
  NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  NATS_PREFIX: z.string().default(""),
  DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/postgres"),
  DATABASE_SCHEMA: z.string().default("public"),
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  REDIS_PREFIX: z.string().default("ar:"),
  LOG_LEVEL: z.string().default("info"),
  /** `json` or `pretty`; unset: pretty on a terminal, JSON otherwise (read by the logger itself). */
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
};

export interface Connections {
  natsUrl: string;
  natsReplicas: number;
  natsPrefix: string;
  databaseUrl: string;
  databaseSchema: string;
  redisUrl: string;
  redisPrefix: string;
  logLevel: string;
}

/** Validates the shared variables plus a service's own; errors name each bad variable. */
export function parseServiceEnv<T extends z.ZodRawShape>(
  own: T,
  env: NodeJS.ProcessEnv,
): z.infer<z.ZodObject<typeof ConnectionEnv & T>> & { connections: Connections } {
  const schema = z.object({ ...ConnectionEnv, ...own });
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid environment: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
    );
  }
  const e = parsed.data as z.infer<z.ZodObject<typeof ConnectionEnv>>;
  return Object.assign(parsed.data, {
    connections: {
      natsUrl: e.NATS_URL,
      natsReplicas: e.NATS_REPLICAS,
      natsPrefix: e.NATS_PREFIX,
      databaseUrl: e.DATABASE_URL,
      databaseSchema: e.DATABASE_SCHEMA,
      redisUrl: e.REDIS_URL,
      redisPrefix: e.REDIS_PREFIX,
      logLevel: e.LOG_LEVEL,
    },
  }) as z.infer<z.ZodObject<typeof ConnectionEnv & T>> & { connections: Connections };
}

/** `tool-executor` → `TOOL_EXECUTOR_OPS_PORT`. */
export function opsPortVariable(service: string): string {
  return `${service.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_OPS_PORT`;
}

/**
 * The port of a service's `/healthz`, `/readyz`, `/metrics`: `<SERVICE>_OPS_PORT`
 * (`INGRESS_OPS_PORT`, `MODEL_PROXY_OPS_PORT`, …), else `OPS_PORT` (meant for a process that runs
 * one service: a container, a pod), else 0: a free port, printed at start. So two services, or two
 * copies of the stack, on one host never fight over a fixed default.
 */
export function opsPortOf(service: string, env: NodeJS.ProcessEnv): number {
  const own = opsPortVariable(service);
  for (const name of [own, "OPS_PORT"]) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") continue;
    const port = Number(raw);
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new ConfigError(`invalid environment: ${name}: a port from 0 to 65535 (0 = any free port)`);
    return port;
  }
  return 0;
}
