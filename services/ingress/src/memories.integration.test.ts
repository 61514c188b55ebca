/** `/v1/memories` through the real memory service (and the model proxy's offline embeddings). */
import * as memory from "@agent-runtime/memory";
import * as modelProxy from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;
let key: string;
const services: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  harness = await startHarness({}, {}, { driver: false });
  const level = "error";
  const env = { ...harness.env, OPENAI_BASE_URL: "" };
  services.push(
    await memory.startMemory(memory.loadConfig(env), { logger: createLogger({ service: "memory", level }) }),
  );
  services.push(
    await modelProxy.startModelProxy(modelProxy.loadConfig({ ...env, OPENAI_BASE_URL: undefined }), {
      logger: createLogger({ service: "model-proxy", level }),
    }),
  );
  key = await harness.key("acme");
}, 60_000);

afterAll(async () => {
  for (const service of services.reverse()) await service.stop().catch(() => undefined);
  await harness?.stop();
});

/** What the routes answer (a memory, a list of them, or an error), loosely. */
interface Answer {
  [field: string]: unknown;
  id: string;
  data: { id: string; text: string; shared: boolean; user?: string | null; text_truncated?: boolean }[];
  error: { type: string; message: string };
}

async function call(method: string, path: string, body?: unknown, bearer = key) {
  const response = await fetch(`${harness.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Answer };
}

describe("/v1/memories", () => {
  it("adds, searches and deletes a user's memories, never another user's", async () => {
    const added = await call("POST", "/v1/memories", {
      user: "ann",
      text: "Ann's favourite colour is teal and she keeps bees.",
      kind: "fact",
      metadata: { source: "test" },
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ object: "memory", user: "ann", kind: "fact" });
    expect(added.body.id).toMatch(/^mem_/);
    await call("POST", "/v1/memories", { user: "bob", id: "bees", text: "Bob is allergic to bees." });

    const found = await call("GET", "/v1/memories/search?q=bees&user=ann");
    expect(found.status).toBe(200);
    expect(found.body.object).toBe("list");
    const ids = found.body.data.map((hit) => hit.id);
    expect(ids).toContain(added.body.id);
    expect(ids).not.toContain("bees");
    expect(found.body.data[0]).toMatchObject({
      object: "memory",
      shared: false,
      metadata: { source: "test" },
    });

    // bob's id, named by ann, is not bob's memory
    const wrongUser = await call("DELETE", "/v1/memories/bees?user=ann");
    expect(wrongUser.status).toBe(404);
    expect(wrongUser.body.error.type).toBeDefined();
    const deleted = await call("DELETE", `/v1/memories/${added.body.id}?user=ann`);
    expect(deleted).toMatchObject({ status: 200, body: { id: added.body.id, deleted: true } });
    const after = await call("GET", "/v1/memories/search?q=bees&user=ann");
    expect(after.body.data).toEqual([]);
    const bobs = await call("GET", "/v1/memories/search?q=bees&user=bob");
    expect(bobs.body.data.map((hit) => hit.id)).toEqual(["bees"]);
  });

  it("adding the same id again replaces that memory", async () => {
    await call("POST", "/v1/memories", { user: "cy", id: "pet", text: "Cy has a cat called Miso." });
    await call("POST", "/v1/memories", { user: "cy", id: "pet", text: "Cy has a dog called Udon." });
    const found = await call("GET", "/v1/memories/search?q=Cy&user=cy");
    expect(found.body.data).toHaveLength(1);
    expect(found.body.data[0]?.text).toMatch(/Udon/);
  });

  it("keeps tenant-shared memories for admin keys and shows them to every user", async () => {
    const refused = await call("POST", "/v1/memories", { text: "Office closes at 6pm." });
    expect(refused.status).toBe(403);
    const shared = await call("POST", "/v1/memories", { text: "The office closes at 6pm." }, BOOTSTRAP_KEY);
    expect(shared.status).toBe(201);
    const other = await harness.key("default");
    const found = await call("GET", "/v1/memories/search?q=office&user=dee", undefined, other);
    expect(found.body.data).toMatchObject([{ id: shared.body.id, shared: true }]);
    // another tenant sees nothing of it
    expect((await call("GET", "/v1/memories/search?q=office&user=dee")).body.data).toEqual([]);
    expect((await call("DELETE", `/v1/memories/${shared.body.id}`, undefined, other)).status).toBe(403);
    expect((await call("DELETE", `/v1/memories/${shared.body.id}`, undefined, BOOTSTRAP_KEY)).status).toBe(
      200,
    );
  });

  it("lists a user's own memories newest first, a page at a time, never another user's", async () => {
    const tenantKey = await harness.key("lister");
    const add = (user: string | undefined, id: string, text: string, kind = "note", bearer = tenantKey) =>
      call("POST", "/v1/memories", { ...(user ? { user } : {}), id, text, kind }, bearer);
    for (const id of ["m1", "m2", "m3"]) {
      expect((await add("eve", id, `Eve's memory ${id}.`, id === "m2" ? "fact" : "note")).status).toBe(201);
    }
    await add("fay", "m1", "Fay's memory.");
    const long = "A sentence about the harbour and its boats. ".repeat(200);
    await add("gus", "long", long);

    const first = await call("GET", "/v1/memories?user=eve&limit=2", undefined, tenantKey);
    expect(first.status).toBe(200);
    expect(first.body.data.map((memory) => memory.id)).toEqual(["m3", "m2"]);
    expect(first.body.data[1]).toMatchObject({
      object: "memory",
      user: "eve",
      shared: false,
      kind: "fact",
      text: "Eve's memory m2.",
      text_truncated: false,
      chunks: 1,
    });
    expect(typeof first.body.next_cursor).toBe("string");
    const second = await call(
      "GET",
      `/v1/memories?user=eve&limit=2&cursor=${first.body.next_cursor as string}`,
      undefined,
      tenantKey,
    );
    expect(second.body.data.map((memory) => memory.id)).toEqual(["m1"]);
    expect(second.body.next_cursor).toBeNull();
    const facts = await call("GET", "/v1/memories?user=eve&kind=fact", undefined, tenantKey);
    expect(facts.body.data.map((memory) => memory.id)).toEqual(["m2"]);
    // fay's m1 is fay's alone; the other tenant's key sees none of eve's
    const fays = await call("GET", "/v1/memories?user=fay", undefined, tenantKey);
    expect(fays.body.data.map((memory) => [memory.id, memory.text])).toEqual([["m1", "Fay's memory."]]);
    expect((await call("GET", "/v1/memories?user=eve")).body.data).toEqual([]);
    // a long document is listed cut, and says so
    const gus = await call("GET", "/v1/memories?user=gus", undefined, tenantKey);
    expect(gus.body.data[0]?.text_truncated).toBe(true);
    expect(gus.body.data[0]?.text.length).toBe(4000);
    expect(long.startsWith(gus.body.data[0]?.text.slice(0, 100) ?? "-")).toBe(true);

    // the tenant's shared memories: admin keys only
    expect((await call("GET", "/v1/memories", undefined, tenantKey)).status).toBe(403);
    const admin = await harness.key("lister", ["runs", "admin"]);
    await add(undefined, "hours", "The lister office opens at 9.", "note", admin);
    const shared = await call("GET", "/v1/memories", undefined, admin);
    expect(shared.body.data.map((memory) => [memory.id, memory.shared, memory.user])).toEqual([
      ["hours", true, null],
    ]);
    const badCursor = await call(
      "GET",
      "/v1/memories?user=eve&cursor=bm90LWEtY3Vyc29y",
      undefined,
      tenantKey,
    );
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.message).toMatch(/cursor/);
  });

  it("answers validation errors in the documented shape", async () => {
    const empty = await call("POST", "/v1/memories", { user: "ann", text: "" });
    expect(empty.status).toBe(400);
    expect(empty.body.error).toMatchObject({
      type: expect.any(String),
      message: expect.stringMatching(/text/),
    });
    const noQuery = await call("GET", "/v1/memories/search?user=ann");
    expect(noQuery.status).toBe(400);
    expect(noQuery.body.error.message).toMatch(/q/);
    const badKind = await call("GET", "/v1/memories/search?q=x&user=ann&kind=secret");
    expect(badKind.status).toBe(400);
    const badId = await call("DELETE", "/v1/memories/bad%20id?user=ann");
    expect(badId.status).toBe(400);
    const anonymous = await call("GET", "/v1/memories/search?q=x&user=ann", undefined, "nope");
    expect(anonymous.status).toBe(401);
  });
});
