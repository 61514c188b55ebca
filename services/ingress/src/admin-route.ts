import { RuntimeError, TENANT_ID_PATTERN } from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import type pg from "pg";
import { z } from "zod";
import { parseBody } from "./http-errors.js";
import {
  DEFAULT_KEY_SCOPES,
  type KeyStore,
  limitProblem,
  limitWireName,
  parseScopes,
  TENANT_LIMIT_FIELDS,
  type TenantLimitField,
} from "./keys.js";
import type { RouteDeps } from "./route-deps.js";
import { usageStats } from "./usage-stats.js";

const Tenant = z.string().regex(TENANT_ID_PATTERN, "1-64 letters, digits, '_' or '-'");

export const KeysQuery = z.object({ tenant: Tenant.optional() });

export const CreateKeyBody = z.object({
  tenant: Tenant,
  scopes: z.array(z.string().max(20)).max(10).optional(),
  name: z.string().max(200).default(""),
});

/** Limits by their API names (`requests_per_minute`); `null` removes a stored limit (the config's default applies). */
export const TenantLimitsBody = z
  .object(
    Object.fromEntries(
      TENANT_LIMIT_FIELDS.map((field) => [limitWireName(field), z.number().nullable().optional()]),
    ) as Record<string, z.ZodOptional<z.ZodNullable<z.ZodNumber>>>,
  )
  .strict();

export const UsageQuery = z.object({ days: z.coerce.number().int().min(1).max(365).default(7) });

function tenantParam(params: unknown): string {
  const tenant = (params as { tenant?: string }).tenant ?? "";
  if (!TENANT_ID_PATTERN.test(tenant)) {
    throw new RuntimeError("validation", "invalid tenant in the path", {
      retryable: false,
      details: [{ path: "tenant", message: "1-64 letters, digits, '_' or '-'" }],
    });
  }
  return tenant;
}

/** Stored limits by their API names. */
function wireLimits(stored: Record<string, number>) {
  return Object.fromEntries(
    TENANT_LIMIT_FIELDS.filter((field) => stored[field] !== undefined).map((field) => [
      limitWireName(field),
      stored[field],
    ]),
  );
}

function keyView(key: Awaited<ReturnType<KeyStore["list"]>>[number]) {
  return {
    id: key.id,
    object: "api_key",
    tenant: key.tenant,
    name: key.name,
    scopes: key.scopes,
    created_at: key.created_at.toISOString(),
    revoked_at: key.revoked_at?.toISOString() ?? null,
  };
}

/**
 * The admin HTTP API (admin-scoped keys only), the same operations as `pnpm admin`: keys (create,
 * list, revoke), tenants and their stored limits (read, update), usage per tenant.
 */
export function registerAdminRoutes(
  app: FastifyInstance,
  deps: RouteDeps,
  stores: { keys: KeyStore; pool: pg.Pool },
): void {
  const { keys, pool } = stores;
  const admin = (request: Parameters<RouteDeps["authenticate"]>[0]) => deps.authenticate(request, "admin");

  app.get("/v1/admin/keys", async (request) => {
    await admin(request);
    const { tenant } = parseBody(KeysQuery, request.query);
    return { object: "list", data: (await keys.list(tenant)).map(keyView) };
  });

  app.post("/v1/admin/keys", async (request, reply) => {
    await admin(request);
    const body = parseBody(CreateKeyBody, request.body);
    const scopes = body.scopes ? parseScopes(body.scopes) : [...DEFAULT_KEY_SCOPES];
    const created = await keys.create(body.tenant, scopes, body.name);
    // the plain key is in this answer only; it is stored hashed
    return reply.code(201).send({
      id: created.id,
      object: "api_key",
      tenant: body.tenant,
      name: body.name,
      scopes,
      key: created.key,
    });
  });

  app.delete("/v1/admin/keys/:id", async (request) => {
    await admin(request);
    const id = (request.params as { id?: string }).id ?? "";
    if (!(await keys.revoke(id)))
      throw new RuntimeError("not_found", `no active key ${id}`, { retryable: false });
    return { id, object: "api_key", revoked: true };
  });

  app.get("/v1/admin/tenants", async (request) => {
    await admin(request);
    const tenants = await keys.listTenants();
    return {
      object: "list",
      data: tenants.map((tenant) => ({
        id: tenant.id,
        object: "tenant",
        active_keys: tenant.activeKeys,
        limits: wireLimits(tenant.limits),
      })),
    };
  });

  app.get("/v1/admin/tenants/:tenant/limits", async (request) => {
    await admin(request);
    const tenant = tenantParam(request.params);
    return { tenant, limits: wireLimits(await keys.tenantLimits(tenant)) };
  });

  // merge: the limits named are set (or removed with null), the others stay
  app.patch("/v1/admin/tenants/:tenant/limits", async (request) => {
    await admin(request);
    const tenant = tenantParam(request.params);
    const body = parseBody(TenantLimitsBody, request.body ?? {});
    const set: Record<string, number> = {};
    const cleared: TenantLimitField[] = [];
    const problems: { path: string; message: string }[] = [];
    for (const field of TENANT_LIMIT_FIELDS) {
      const value = body[limitWireName(field)];
      if (value === undefined) continue;
      if (value === null) {
        cleared.push(field);
        continue;
      }
      const problem = limitProblem(field, value);
      if (problem) problems.push({ path: limitWireName(field), message: `must be ${problem}` });
      else set[field] = value;
    }
    if (problems.length > 0) {
      throw new RuntimeError(
        "validation",
        `invalid request body: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join("; ")}`,
        { retryable: false, details: problems },
      );
    }
    if (Object.keys(set).length > 0) await keys.setTenantLimits(tenant, set);
    if (cleared.length > 0) await keys.clearTenantLimits(tenant, cleared);
    return { tenant, limits: wireLimits(await keys.tenantLimits(tenant)) };
  });

  app.delete("/v1/admin/tenants/:tenant/limits", async (request) => {
    await admin(request);
    const tenant = tenantParam(request.params);
    await keys.clearTenantLimits(tenant);
    return { tenant, limits: {} };
  });

  app.get("/v1/admin/tenants/:tenant/usage", async (request) => {
    await admin(request);
    const tenant = tenantParam(request.params);
    const { days } = parseBody(UsageQuery, request.query);
    return usageStats(pool, tenant, days);
  });
}
