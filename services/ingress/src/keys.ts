import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { TenantLimits } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { migrate } from "@agent-runtime/stores";
import type pg from "pg";

export const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS tenants (
     id text PRIMARY KEY,
     limits jsonb NOT NULL DEFAULT '{}',
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS api_keys (
     id text PRIMARY KEY,
     hash text NOT NULL UNIQUE,
     tenant text NOT NULL REFERENCES tenants (id),
     name text NOT NULL DEFAULT '',
     scopes text[] NOT NULL DEFAULT '{chat,runs,events}',
     created_at timestamptz NOT NULL DEFAULT now(),
     revoked_at timestamptz
   )`,
  `CREATE TABLE IF NOT EXISTS usage_daily (
     tenant text NOT NULL,
     day date NOT NULL,
     kind text NOT NULL,
     name text NOT NULL,
     agent text NOT NULL DEFAULT '',
     calls bigint NOT NULL DEFAULT 0,
     prompt_tokens bigint NOT NULL DEFAULT 0,
     completion_tokens bigint NOT NULL DEFAULT 0,
     cost_usd double precision NOT NULL DEFAULT 0,
     cache_hits bigint NOT NULL DEFAULT 0,
     errors bigint NOT NULL DEFAULT 0,
     latency_ms_sum double precision NOT NULL DEFAULT 0,
     PRIMARY KEY (tenant, day, kind, name, agent)
   )`,
  // paid calls of a model with no price: their cost is unknown, not 0
  "ALTER TABLE usage_daily ADD COLUMN IF NOT EXISTS unpriced_calls bigint NOT NULL DEFAULT 0",
  // usage record ids already folded in, so a redelivered record is not counted twice
  `CREATE TABLE IF NOT EXISTS usage_seen (
     id text PRIMARY KEY,
     at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE INDEX IF NOT EXISTS usage_seen_at ON usage_seen (at)`,
  `CREATE TABLE IF NOT EXISTS usage_user_daily (
     tenant text NOT NULL,
     user_id text NOT NULL,
     day date NOT NULL,
     tokens bigint NOT NULL DEFAULT 0,
     cost_usd double precision NOT NULL DEFAULT 0,
     PRIMARY KEY (tenant, user_id, day)
   )`,
  `CREATE TABLE IF NOT EXISTS usage_runs (
     tenant text NOT NULL,
     day date NOT NULL,
     agent text NOT NULL DEFAULT '',
     run_id text NOT NULL,
     PRIMARY KEY (tenant, day, agent, run_id)
   )`,
];

export const SCOPES = ["chat", "runs", "events", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  id: string;
  tenant: string;
  scopes: Scope[];
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/**
 * Whether two key hashes are the same, in time that does not depend on where they
 * differ. A presented key is never compared as text: it is hashed and found by its
 * hash, and the stored hash is then checked with this.
 */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  return left.length === right.length && timingSafeEqual(left, right);
}

/** API keys stored hashed, each bound to a tenant; look-ups cached briefly. */
export class KeyStore {
  private readonly cache = new Map<string, { key: ApiKey | null; expiresAt: number }>();
  private readonly lookups = new Map<string, Promise<ApiKey | null>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly cacheMs: number,
  ) {}

  static async open(pool: pg.Pool, cacheMs: number): Promise<KeyStore> {
    await migrate(pool, "ingress", MIGRATIONS);
    return new KeyStore(pool, cacheMs);
  }

  async ensureTenant(tenant: string): Promise<void> {
    await this.pool.query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", [tenant]);
  }

  /**
   * Registers a known key (BOOTSTRAP_API_KEY) idempotently. A key revoked since
   * stays revoked: restarting with the same environment does not bring it back.
   */
  async register(
    key: string,
    tenant: string,
    scopes: Scope[],
    name: string,
  ): Promise<"created" | "exists" | "revoked"> {
    await this.ensureTenant(tenant);
    const inserted = await this.pool.query(
      `INSERT INTO api_keys (id, hash, tenant, name, scopes) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (hash) DO NOTHING`,
      [`key_${hashKey(key).slice(0, 12)}`, hashKey(key), tenant, name, scopes],
    );
    if (inserted.rowCount === 1) return "created";
    const existing = await this.pool.query<{ revoked: boolean }>(
      "SELECT revoked_at IS NOT NULL AS revoked FROM api_keys WHERE hash = $1",
      [hashKey(key)],
    );
    return existing.rows[0]?.revoked ? "revoked" : "exists";
  }

  /** Makes a new key; the plain key is returned once and never stored. */
  async create(tenant: string, scopes: Scope[], name: string): Promise<{ id: string; key: string }> {
    await this.ensureTenant(tenant);
    const key = `ar_${randomBytes(24).toString("base64url")}`;
    const id = `key_${randomBytes(6).toString("hex")}`;
    await this.pool.query(
      "INSERT INTO api_keys (id, hash, tenant, name, scopes) VALUES ($1, $2, $3, $4, $5)",
      [id, hashKey(key), tenant, name, scopes],
    );
    return { id, key };
  }

  async list(tenant?: string) {
    const result = await this.pool.query(
      `SELECT id, tenant, name, scopes, created_at, revoked_at FROM api_keys ${tenant ? "WHERE tenant = $1" : ""} ORDER BY created_at`,
      tenant ? [tenant] : [],
    );
    return result.rows as {
      id: string;
      tenant: string;
      name: string;
      scopes: string[];
      created_at: Date;
      revoked_at: Date | null;
    }[];
  }

  async revoke(id: string): Promise<boolean> {
    const result = await this.pool.query(
      "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
      [id],
    );
    return result.rowCount === 1;
  }

  async setTenantLimits(tenant: string, limits: Record<string, number>): Promise<void> {
    await this.ensureTenant(tenant);
    await this.pool.query("UPDATE tenants SET limits = limits || $2::jsonb WHERE id = $1", [
      tenant,
      JSON.stringify(limits),
    ]);
  }

  /** Removes stored limits of a tenant (all, or the named ones); config defaults apply again. */
  async clearTenantLimits(tenant: string, names?: string[]): Promise<void> {
    if (names?.length) {
      await this.pool.query("UPDATE tenants SET limits = limits - $2::text[] WHERE id = $1", [tenant, names]);
    } else {
      await this.pool.query("UPDATE tenants SET limits = '{}' WHERE id = $1", [tenant]);
    }
  }

  async listTenants() {
    const result = await this.pool.query<{ id: string; limits: Record<string, number>; keys: string }>(
      `SELECT t.id, t.limits, count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS keys
       FROM tenants t LEFT JOIN api_keys k ON k.tenant = t.id GROUP BY t.id ORDER BY t.id`,
    );
    return result.rows.map((row) => ({ id: row.id, limits: row.limits, activeKeys: Number(row.keys) }));
  }

  async tenantLimits(tenant: string): Promise<Record<string, number>> {
    const result = await this.pool.query<{ limits: Record<string, number> }>(
      "SELECT limits FROM tenants WHERE id = $1",
      [tenant],
    );
    return result.rows[0]?.limits ?? {};
  }

  private async lookup(hash: string): Promise<ApiKey | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        this.pool.query<{ id: string; tenant: string; scopes: Scope[]; hash: string }>(
          "SELECT id, tenant, scopes, hash FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
          [hash],
        ),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("API key look-up timed out")), LOOKUP_TIMEOUT_MS);
        }),
      ]);
      const row = result.rows.find((candidate) => sameHash(candidate.hash, hash));
      const key: ApiKey | null = row ? { id: row.id, tenant: row.tenant, scopes: row.scopes } : null;
      this.cache.delete(hash); // re-insert at the end: the map stays in least-recently-refreshed order
      this.cache.set(hash, { key, expiresAt: Date.now() + this.cacheMs });
      if (this.cache.size > 50_000) this.cache.delete(this.cache.keys().next().value!);
      return key;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves `Authorization: Bearer <key>` to a key, or throws 401 (503 while keys cannot be checked). */
  async authenticate(header: string | undefined): Promise<ApiKey> {
    const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!match?.[1]) {
      throw new RuntimeError("unauthorized", "missing API key: send Authorization: Bearer <key>", {
        retryable: false,
      });
    }
    const hash = hashKey(match[1]);
    const cached = this.cache.get(hash);
    let key: ApiKey | null;
    if (cached && cached.expiresAt > Date.now()) {
      key = cached.key;
    } else {
      // requests that find the same key stale share one look-up
      let lookup = this.lookups.get(hash);
      if (!lookup) {
        lookup = this.lookup(hash).finally(() => this.lookups.delete(hash));
        this.lookups.set(hash, lookup);
      }
      try {
        key = await lookup;
      } catch (error) {
        // Postgres unreachable: the last answer stands (nobody can revoke a key meanwhile either)
        if (!cached) {
          throw new RuntimeError("unavailable", "API keys cannot be checked right now; retry shortly", {
            retryAfterMs: 1000,
            cause: error,
          });
        }
        key = cached.key;
      }
    }
    if (!key) throw new RuntimeError("unauthorized", "invalid API key", { retryable: false });
    return key;
  }
}

const LOOKUP_TIMEOUT_MS = 3000;

/**
 * A key may do what its scopes name. `admin` (other tenants' stats, keys and limits)
 * is its own scope: keys get it only when made with it (`BOOTSTRAP_API_KEY`, or the
 * admin CLI with `--scopes admin`), never by default; an admin key may also do
 * everything the other scopes allow.
 */
export function requireScope(key: ApiKey, scope: Scope): void {
  if (!key.scopes.includes(scope) && !key.scopes.includes("admin")) {
    throw new RuntimeError("forbidden", `this API key lacks the "${scope}" scope`, { retryable: false });
  }
}

/**
 * The limits an admin may store for a tenant (over the config file's defaults), by name:
 * the config's field (`requestsPerMinute`), the CLI flag (`--requests-per-minute`) and the HTTP
 * API's field (`requests_per_minute`). Values are checked with the config's own schema.
 */
export const TENANT_LIMIT_FIELDS = [
  "requestsPerMinute",
  "userRequestsPerMinute",
  "concurrentRuns",
  "userConcurrentRuns",
  "tokensPerDay",
  "costPerMonthUsd",
  "userTokensPerDay",
  "userCostPerMonthUsd",
] as const satisfies readonly (keyof TenantLimits)[];
export type TenantLimitField = (typeof TENANT_LIMIT_FIELDS)[number];

const spelled = (field: string, separator: "-" | "_") =>
  field.replace(/[A-Z]/g, (letter) => `${separator}${letter.toLowerCase()}`);
/** `requestsPerMinute` → `requests-per-minute`. */
export const limitFlag = (field: TenantLimitField) => spelled(field, "-");
/** `requestsPerMinute` → `requests_per_minute`. */
export const limitWireName = (field: TenantLimitField) => spelled(field, "_");

/** Why `value` is not a valid `field` limit, or undefined when it is. */
export function limitProblem(field: TenantLimitField, value: unknown): string | undefined {
  const parsed = TenantLimits.shape[field].safeParse(value);
  if (parsed.success && value !== undefined) return undefined;
  return field.endsWith("Usd") ? "a positive number" : "a positive whole number";
}

/** Scopes as the CLI (`chat,runs`) or the API (`["chat","runs"]`) give them; unknown ones refused. */
export function parseScopes(scopes: readonly string[]): Scope[] {
  const trimmed = scopes.map((scope) => scope.trim()).filter(Boolean);
  const unknown = trimmed.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
  if (unknown.length > 0 || trimmed.length === 0) {
    throw new RuntimeError(
      "validation",
      unknown.length > 0
        ? `unknown scopes: ${unknown.join(", ")} (known: ${SCOPES.join(", ")})`
        : `give at least one scope (known: ${SCOPES.join(", ")})`,
      { retryable: false, details: [{ path: "scopes", message: `one or more of ${SCOPES.join(", ")}` }] },
    );
  }
  return [...new Set(trimmed)] as Scope[];
}

/** The default scopes of a new key: everything but `admin`. */
export const DEFAULT_KEY_SCOPES: readonly Scope[] = ["chat", "runs", "events"];
