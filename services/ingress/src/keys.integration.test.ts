/**
 * API keys: stored only as hashes, never compared as text (hashed, found by hash, the
 * stored hash checked in constant time), and the admin scope held apart from the others.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashKey, requireScope, sameHash } from "./keys.js";
import { BOOTSTRAP_KEY, type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({}, {}, { driver: false });
});

afterAll(async () => {
  await harness?.stop();
});

const get = (path: string, key: string) =>
  fetch(`${harness.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

describe("key comparison", () => {
  it("sameHash is equality of hashes, whatever their lengths", () => {
    const hash = hashKey("sk-one");
    expect(sameHash(hash, hashKey("sk-one"))).toBe(true);
    expect(sameHash(hash, hashKey("sk-two"))).toBe(false);
    expect(sameHash(hash, hash.slice(0, 10))).toBe(false);
    expect(sameHash("", "")).toBe(true);
  });

  it("stores only hashes and refuses a key one character off", async () => {
    const key = await harness.key("keys-a");
    const stored = await harness.pool.query<{ hash: string }>("SELECT hash FROM api_keys WHERE tenant = $1", [
      "keys-a",
    ]);
    expect(stored.rows).toEqual([{ hash: hashKey(key) }]);
    const dump = JSON.stringify((await harness.pool.query("SELECT * FROM api_keys")).rows);
    expect(dump).not.toContain(key);
    expect(dump).not.toContain(BOOTSTRAP_KEY);
    expect((await get("/v1/models", key)).status).toBe(200);
    const last = key.at(-1) === "A" ? "B" : "A";
    expect((await get("/v1/models", `${key.slice(0, -1)}${last}`)).status).toBe(401);
    expect((await get("/v1/models", `${key}x`)).status).toBe(401);
    expect((await get("/v1/models", key.slice(0, -1))).status).toBe(401);
  });
});

describe("admin scope", () => {
  it("is never given by default and is needed to look past the key's own tenant", async () => {
    const plain = await harness.key("keys-b");
    const [row] = (
      await harness.pool.query<{ scopes: string[] }>("SELECT scopes FROM api_keys WHERE tenant = $1", [
        "keys-b",
      ])
    ).rows;
    expect(row?.scopes).not.toContain("admin");
    expect((await get("/v1/stats", plain)).status).toBe(200);
    for (const tenant of ["default", "*"]) {
      const refused = await get(`/v1/stats?tenant=${encodeURIComponent(tenant)}`, plain);
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { type: string } }).error.type).toBe("permission_error");
    }
    const admin = await harness.key("keys-c", ["admin"]);
    expect((await get("/v1/stats?tenant=keys-b", admin)).status).toBe(200);
    expect((await get("/v1/stats?tenant=*", BOOTSTRAP_KEY)).status).toBe(200);
  });

  it("scopes do not stand in for one another; admin covers them", () => {
    const events = { id: "k1", tenant: "t", scopes: ["events" as const] };
    expect(() => requireScope(events, "chat")).toThrow(/lacks the "chat" scope/);
    expect(() => requireScope(events, "admin")).toThrow(/lacks the "admin" scope/);
    const all = { id: "k2", tenant: "t", scopes: ["chat" as const, "runs" as const, "events" as const] };
    expect(() => requireScope(all, "admin")).toThrow(/admin/);
    const admin = { id: "k3", tenant: "t", scopes: ["admin" as const] };
    for (const scope of ["chat", "runs", "events", "admin"] as const) requireScope(admin, scope);
  });
});
