/** The admin HTTP API (`/v1/admin/*`) with admin-scoped keys. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({}, { KEY_CACHE_MS: "0" }, { driver: false });
}, 60_000);

afterAll(async () => {
  await harness?.stop();
});

interface Answer {
  [field: string]: unknown;
  data: { id: string; tenant?: string; revoked_at?: string | null; limits?: Record<string, number> }[];
  limits: Record<string, number>;
  error: { type: string; message: string };
}

async function call(method: string, path: string, body?: unknown, key = BOOTSTRAP_KEY) {
  const response = await fetch(`${harness.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Answer };
}

describe("/v1/admin", () => {
  it("is for admin keys only", async () => {
    const plain = await harness.key("acme");
    const refused = await call("GET", "/v1/admin/keys", undefined, plain);
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/admin/);
    expect((await call("GET", "/v1/admin/tenants", undefined, "nope")).status).toBe(401);
  });

  it("creates, lists and revokes keys", async () => {
    const created = await call("POST", "/v1/admin/keys", { tenant: "globex", name: "ci" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: "api_key",
      tenant: "globex",
      scopes: ["chat", "runs", "events"],
    });
    const key = created.body.key as string;
    expect((await call("GET", "/v1/models", undefined, key)).status).toBe(200);
    const listed = await call("GET", "/v1/admin/keys?tenant=globex");
    expect(listed.body.data).toMatchObject([{ id: created.body.id, tenant: "globex", revoked_at: null }]);
    const revoked = await call("DELETE", `/v1/admin/keys/${created.body.id as string}`);
    expect(revoked.body).toMatchObject({ revoked: true });
    expect((await call("GET", "/v1/models", undefined, key)).status).toBe(401);
    expect((await call("DELETE", `/v1/admin/keys/${created.body.id as string}`)).status).toBe(404);
    const bad = await call("POST", "/v1/admin/keys", { tenant: "globex", scopes: ["root"] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/unknown scopes: root/);
  });

  it("reads and updates a tenant's limits, and reports its usage", async () => {
    const set = await call("PATCH", "/v1/admin/tenants/initech/limits", {
      requests_per_minute: 600,
      concurrent_runs: 5,
      cost_per_month_usd: 12.5,
    });
    expect(set.status).toBe(200);
    expect(set.body.limits).toEqual({
      requests_per_minute: 600,
      concurrent_runs: 5,
      cost_per_month_usd: 12.5,
    });
    const cleared = await call("PATCH", "/v1/admin/tenants/initech/limits", { concurrent_runs: null });
    expect(cleared.body.limits).toEqual({ requests_per_minute: 600, cost_per_month_usd: 12.5 });
    expect((await call("GET", "/v1/admin/tenants/initech/limits")).body.limits).toEqual(cleared.body.limits);
    const tenants = await call("GET", "/v1/admin/tenants");
    expect(tenants.body.data.find((tenant) => tenant.id === "initech")?.limits).toEqual(cleared.body.limits);

    const negative = await call("PATCH", "/v1/admin/tenants/initech/limits", { requests_per_minute: -1 });
    expect(negative.status).toBe(400);
    expect(negative.body.error.message).toMatch(/requests_per_minute: must be a positive whole number/);
    const unknown = await call("PATCH", "/v1/admin/tenants/initech/limits", { requestsPerMinute: 5 });
    expect(unknown.status).toBe(400);
    expect((await call("DELETE", "/v1/admin/tenants/initech/limits")).body.limits).toEqual({});

    const usage = await call("GET", "/v1/admin/tenants/initech/usage?days=3");
    expect(usage.status).toBe(200);
    expect(usage.body).toMatchObject({ tenant: "initech", days: 3 });
  });
});
