/**
 * Admin CLI: `pnpm admin keys create --tenant acme [--scopes chat,runs] [--name ci]`,
 * `pnpm admin keys list [--tenant acme]`, `pnpm admin keys revoke <key id>`,
 * `pnpm admin tenants set-limits <tenant> --requests-per-minute 600 --concurrent-runs 20 ...`,
 * `pnpm admin --help`. Uses DATABASE_URL / DATABASE_SCHEMA like the ingress service; the same
 * operations are the admin HTTP API (`/v1/admin/*`, admin-scoped keys) on ingress.
 */
import { parseArgs } from "node:util";
import { RuntimeError, TENANT_ID_PATTERN } from "@agent-runtime/contracts";
import { createPool } from "@agent-runtime/stores";
import {
  DEFAULT_KEY_SCOPES,
  KeyStore,
  limitFlag,
  limitProblem,
  parseScopes,
  SCOPES,
  TENANT_LIMIT_FIELDS,
} from "./keys.js";

const LIMIT_OPTIONS = TENANT_LIMIT_FIELDS.map((field) => `[--${limitFlag(field)} N]`);

const USAGE = `usage: pnpm admin <command>

  keys create --tenant <tenant> [--scopes ${SCOPES.join(",")}] [--name <label>]
                                  make a key (default scopes ${DEFAULT_KEY_SCOPES.join(",")}); shown once
  keys list [--tenant <tenant>]   every key, or a tenant's, with its state
  keys revoke <key id>            revoke a key (at once on this replica, within KEY_CACHE_MS elsewhere)
  tenants list                    tenants with their active keys and stored limits
  tenants set-limits <tenant> ${LIMIT_OPTIONS.slice(0, 2).join(" ")}
                              ${LIMIT_OPTIONS.slice(2, 5).join(" ")}
                              ${LIMIT_OPTIONS.slice(5).join(" ")}
  tenants clear-limits <tenant> [--only ${TENANT_LIMIT_FIELDS.slice(0, 2).join(",")},...]
  --help, -h                      this text

Limits set here override the config file's defaults and take effect on every replica within 10 s.
Environment: DATABASE_URL, DATABASE_SCHEMA (as ingress). Over HTTP: /v1/admin/* with an admin key.`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

const argv = process.argv.slice(2);
if (argv.length === 0 || argv.includes("--help") || argv.includes("-h") || argv[0] === "help") {
  print(USAGE);
  process.exit(argv.length === 0 ? 2 : 0);
}
const [group, command, ...rest] = argv;
let parsed: ReturnType<typeof parseArgs>;
try {
  parsed = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: "string" },
      scopes: { type: "string" },
      name: { type: "string" },
      only: { type: "string" },
      ...Object.fromEntries(
        TENANT_LIMIT_FIELDS.map((field) => [limitFlag(field), { type: "string" as const }]),
      ),
    },
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const values = parsed.values as Record<string, string | undefined>;
const positionals = parsed.positionals;
const known = [
  "keys create",
  "keys list",
  "keys revoke",
  "tenants list",
  "tenants set-limits",
  "tenants clear-limits",
];
if (!known.includes(`${group} ${command}`))
  fail(`unknown command "${[group, command].filter(Boolean).join(" ")}"`);

const pool = await createPool({
  url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  schema: process.env.DATABASE_SCHEMA ?? "public",
  applicationName: "admin-cli",
  max: 2,
});
try {
  const keys = await KeyStore.open(pool, 0);
  if (group === "keys" && command === "create") {
    if (!values.tenant || !TENANT_ID_PATTERN.test(values.tenant))
      fail("--tenant is required (letters, digits, _ and -)");
    const scopes = values.scopes ? parseScopes(values.scopes.split(",")) : [...DEFAULT_KEY_SCOPES];
    const created = await keys.create(values.tenant, scopes, values.name ?? "");
    print(`created ${created.id} for tenant ${values.tenant} (${scopes.join(",")})`);
    print(`key (shown once, store it now): ${created.key}`);
  } else if (group === "keys" && command === "list") {
    for (const key of await keys.list(values.tenant)) {
      print(
        `${key.id}\t${key.tenant}\t${key.scopes.join(",")}\t${key.name || "-"}\t${key.created_at.toISOString()}\t${key.revoked_at ? `revoked ${key.revoked_at.toISOString()}` : "active"}`,
      );
    }
  } else if (group === "keys" && command === "revoke") {
    const id = positionals[0] ?? fail("give the key id to revoke");
    print((await keys.revoke(id)) ? `revoked ${id}` : `no active key ${id}`);
  } else if (group === "tenants" && command === "set-limits") {
    const tenant = positionals[0] ?? fail("give the tenant");
    const limits: Record<string, number> = {};
    for (const field of TENANT_LIMIT_FIELDS) {
      const raw = values[limitFlag(field)];
      if (raw === undefined) continue;
      const problem = limitProblem(field, Number(raw));
      if (problem) fail(`--${limitFlag(field)} must be ${problem}`);
      limits[field] = Number(raw);
    }
    if (Object.keys(limits).length === 0) fail("give at least one limit");
    await keys.setTenantLimits(tenant, limits);
    print(`limits of ${tenant}: ${JSON.stringify(await keys.tenantLimits(tenant))}`);
  } else if (group === "tenants" && command === "list") {
    for (const tenant of await keys.listTenants()) {
      print(`${tenant.id}\t${tenant.activeKeys} active keys\t${JSON.stringify(tenant.limits)}`);
    }
  } else if (group === "tenants" && command === "clear-limits") {
    const tenant = positionals[0] ?? fail("give the tenant");
    const only = values.only
      ?.split(",")
      .map((name) => name.trim())
      .filter(Boolean);
    await keys.clearTenantLimits(tenant, only);
    print(`limits of ${tenant}: ${JSON.stringify(await keys.tenantLimits(tenant))}`);
  }
} catch (error) {
  if (!(error instanceof RuntimeError)) throw error;
  fail(error.message);
} finally {
  await pool.end();
}
