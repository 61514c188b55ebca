import { createHash, randomBytes } from "node:crypto";
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

/** API keys stored hashed, each bound to a tenant; look-ups cached briefly. */
export class KeyStore {
  private readonly cache = new Map<string, { key: ApiKey | null; expiresAt: number }>();

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

  /** Registers a known key (BOOTSTRAP_API_KEY) idempotently. */
  async register(key: string, tenant: string, scopes: Scope[], name: string): Promise<void> {
    await this.ensureTenant(tenant);
    await this.pool.query(
      `INSERT INTO api_keys (id, hash, tenant, name, scopes) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (hash) DO UPDATE SET revoked_at = NULL, scopes = $5`,
      [`key_${hashKey(key).slice(0, 12)}`, hashKey(key), tenant, name, scopes],
    );
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

  async tenantLimits(tenant: string): Promise<Record<string, number>> {
    const result = await this.pool.query<{ limits: Record<string, number> }>(
      "SELECT limits FROM tenants WHERE id = $1",
      [tenant],
    );
    return result.rows[0]?.limits ?? {};
  }

  /** Resolves `Authorization: Bearer <key>` to a key, or throws 401. */
  async authenticate(header: string | undefined): Promise<ApiKey> {
    const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!match?.[1]) {
      throw new RuntimeError("unauthorized", "missing API key: send Authorization: Bearer <key>", {
        retryable: false,
      });
    }
    const hash = hashKey(match[1]);
    const now = Date.now();
    const cached = this.cache.get(hash);
    let key: ApiKey | null;
    if (cached && cached.expiresAt > now) {
      key = cached.key;
    } else {
      const result = await this.pool.query<{ id: string; tenant: string; scopes: Scope[] }>(
        "SELECT id, tenant, scopes FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
        [hash],
      );
      key = result.rows[0] ?? null;
      this.cache.set(hash, { key, expiresAt: now + this.cacheMs });
      if (this.cache.size > 50_000) this.cache.delete(this.cache.keys().next().value!);
    }
    if (!key) throw new RuntimeError("unauthorized", "invalid API key", { retryable: false });
    return key;
  }
}

export function requireScope(key: ApiKey, scope: Scope): void {
  if (!key.scopes.includes(scope) && !key.scopes.includes("admin")) {
    throw new RuntimeError("forbidden", `this API key lacks the "${scope}" scope`, { retryable: false });
  }
}
