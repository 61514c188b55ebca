import type { Redis } from "ioredis";
import type pg from "pg";

/** `postgres://user:secret@host:5432/db` → `postgres://user@host:5432/db`: no password in logs. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1@");
  }
}

/** One line for start-up: the database, user, schema and server version a pool reached. */
export async function describePostgres(pool: pg.Pool, url: string): Promise<string> {
  const result = await pool.query<{ database: string; user: string; schema: string; version: string }>(
    "SELECT current_database() AS database, current_user AS user, current_schema() AS schema, current_setting('server_version') AS version",
  );
  const row = result.rows[0];
  if (!row) return `Postgres ${withoutPassword(url)}`;
  let host = url;
  try {
    const parsed = new URL(url);
    host = `${parsed.hostname}:${parsed.port || "5432"}`;
  } catch {
    // keep the URL as given
  }
  return `Postgres ${row.user}@${host}/${row.database} (schema ${row.schema}, server ${row.version.split(" ")[0]})`;
}

/**
 * One line for start-up about Redis, waiting up to `waitMs` for it to answer: Redis is a cache and
 * limiter, so an unreachable one is said plainly (with what to start) and the service runs on.
 */
export async function describeRedis(
  redis: Redis,
  url: string,
  prefix: string,
  waitMs = 1500,
): Promise<string> {
  if (redis.status !== "ready") {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
      function done() {
        clearTimeout(timer);
        redis.off("ready", done);
        resolve();
      }
      redis.once("ready", done);
    });
  }
  const where = withoutPassword(url);
  if (redis.status !== "ready")
    return `Redis ${where} NOT REACHABLE (caches and limits are per replica until it is; start it: docker compose up -d redis)`;
  const version = /redis_version:(\S+)/.exec((await redis.info("server").catch(() => "")) ?? "")?.[1];
  return `Redis ${where} (${version ? `server ${version}, ` : ""}prefix "${prefix}")`;
}
