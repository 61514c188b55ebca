import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

/** Names for one isolated copy of the runtime: NATS prefix, Postgres schema, Redis key prefix. */
export interface Isolation {
  id: string;
  natsPrefix: string;
  schema: string;
  redisPrefix: string;
}

export function newIsolation(label = "e2e"): Isolation {
  const id = `${label}${randomBytes(4).toString("hex")}`;
  return { id, natsPrefix: id, schema: id, redisPrefix: `${id}:` };
}

/** Drops the schema and deletes the Redis keys of an isolation. */
export async function dropIsolation(isolation: Isolation): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${isolation.schema}" CASCADE`);
  } finally {
    await client.end();
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${isolation.redisPrefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } catch {
    // Redis is a cache here; nothing to clean when it is gone.
  } finally {
    redis.disconnect();
  }
}

/** The environment that points a service at the local servers inside an isolation. */
export function isolatedEnv(isolation: Isolation, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    NATS_URL,
    DATABASE_URL,
    REDIS_URL,
    NATS_PREFIX: isolation.natsPrefix,
    DATABASE_SCHEMA: isolation.schema,
    REDIS_PREFIX: isolation.redisPrefix,
    OPS_PORT: "0",
    OTEL_SDK_DISABLED: "true",
    ...extra,
  };
}
