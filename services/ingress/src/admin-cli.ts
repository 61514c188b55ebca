/**
 * Admin CLI: `pnpm admin keys create --tenant acme [--scopes chat,runs] [--name ci]`,
 * `pnpm admin keys list [--tenant acme]`, `pnpm admin keys revoke <key id>`,
 * `pnpm admin tenants set-limits <tenant> --requests-per-minute 600 --concurrent-runs 20 ...`.
 * Uses DATABASE_URL / DATABASE_SCHEMA like the ingress service.
 */
import { parseArgs } from "node:util";
import { createPool } from "@agent-runtime/stores";
import { KeyStore, SCOPES, type Scope } from "./keys.js";

const USAGE = `usage:
  admin keys create --tenant <tenant> [--scopes chat,runs,events,admin] [--name <label>]
  admin keys list [--tenant <tenant>]
  admin keys revoke <key id>
  admin tenants list
  admin tenants set-limits <tenant> [--requests-per-minute N] [--user-requests-per-minute N]
                                   [--concurrent-runs N] [--user-concurrent-runs N]
                                   [--tokens-per-day N] [--cost-per-month-usd N]
                                   [--user-tokens-per-day N] [--user-cost-per-month-usd N]
  admin tenants clear-limits <tenant> [--only requestsPerMinute,concurrentRuns,...]
Limits set here override the config file's defaults and take effect on every replica within 10 s.`;

function fail(message: string): never {
  console.error(`error: ${message}\n${USAGE}`);
  process.exit(2);
}

const [group, command, ...rest] = process.argv.slice(2);
const { values, positionals } = parseArgs({
  args: rest,
  allowPositionals: true,
  options: {
    tenant: { type: "string" },
    scopes: { type: "string" },
    name: { type: "string" },
    "requests-per-minute": { type: "string" },
    "user-requests-per-minute": { type: "string" },
    "concurrent-runs": { type: "string" },
    "user-concurrent-runs": { type: "string" },
    "user-tokens-per-day": { type: "string" },
    "user-cost-per-month-usd": { type: "string" },
    only: { type: "string" },
    "tokens-per-day": { type: "string" },
    "cost-per-month-usd": { type: "string" },
  },
});

const pool = await createPool({
  url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  schema: process.env.DATABASE_SCHEMA ?? "public",
  applicationName: "admin-cli",
  max: 2,
});
try {
  const keys = await KeyStore.open(pool, 0);
  if (group === "keys" && command === "create") {
    if (!values.tenant || !/^[A-Za-z0-9_-]{1,64}$/.test(values.tenant))
      fail("--tenant is required (letters, digits, _ and -)");
    const scopes = (values.scopes ?? "chat,runs,events").split(",").map((scope) => scope.trim());
    const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
    if (unknown.length > 0) fail(`unknown scopes: ${unknown.join(", ")} (known: ${SCOPES.join(", ")})`);
    const created = await keys.create(values.tenant, scopes as Scope[], values.name ?? "");
    console.log(`created ${created.id} for tenant ${values.tenant} (${scopes.join(",")})`);
    console.log(`key (shown once, store it now): ${created.key}`);
  } else if (group === "keys" && command === "list") {
    for (const key of await keys.list(values.tenant)) {
      console.log(
        `${key.id}\t${key.tenant}\t${key.scopes.join(",")}\t${key.name || "-"}\t${key.created_at.toISOString()}\t${key.revoked_at ? `revoked ${key.revoked_at.toISOString()}` : "active"}`,
      );
    }
  } else if (group === "keys" && command === "revoke") {
    const id = positionals[0] ?? fail("give the key id to revoke");
    console.log((await keys.revoke(id)) ? `revoked ${id}` : `no active key ${id}`);
  } else if (group === "tenants" && command === "set-limits") {
    const tenant = positionals[0] ?? fail("give the tenant");
    const limits: Record<string, number> = {};
    const map: Record<string, string> = {
      "requests-per-minute": "requestsPerMinute",
      "user-requests-per-minute": "userRequestsPerMinute",
      "concurrent-runs": "concurrentRuns",
      "user-concurrent-runs": "userConcurrentRuns",
      "user-tokens-per-day": "userTokensPerDay",
      "user-cost-per-month-usd": "userCostPerMonthUsd",
      "tokens-per-day": "tokensPerDay",
      "cost-per-month-usd": "costPerMonthUsd",
    };
    for (const [flag, field] of Object.entries(map)) {
      const raw = values[flag as keyof typeof values];
      if (raw === undefined) continue;
      const value = Number(raw);
      if (!Number.isFinite(value) || value <= 0) fail(`--${flag} must be a positive number`);
      if (!field.endsWith("Usd") && !Number.isInteger(value)) fail(`--${flag} must be a whole number`);
      limits[field] = value;
    }
    if (Object.keys(limits).length === 0) fail("give at least one limit");
    await keys.setTenantLimits(tenant, limits);
    console.log(`limits of ${tenant}: ${JSON.stringify(await keys.tenantLimits(tenant))}`);
  } else if (group === "tenants" && command === "list") {
    for (const tenant of await keys.listTenants()) {
      console.log(`${tenant.id}\t${tenant.activeKeys} active keys\t${JSON.stringify(tenant.limits)}`);
    }
  } else if (group === "tenants" && command === "clear-limits") {
    const tenant = positionals[0] ?? fail("give the tenant");
    const only = values.only
      ?.split(",")
      .map((name) => name.trim())
      .filter(Boolean);
    await keys.clearTenantLimits(tenant, only);
    console.log(`limits of ${tenant}: ${JSON.stringify(await keys.tenantLimits(tenant))}`);
  } else {
    fail("unknown command");
  }
} finally {
  await pool.end();
}
