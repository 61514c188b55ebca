/**
 * Real answers of the routes against the response schemas the OpenAPI document is generated from:
 * each parses, and holds no field the schema does not name (so neither can change alone).
 */
import { randomUUID } from "node:crypto";
import { HttpErrorBody } from "@agent-runtime/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ApiKeyCreated,
  ApiKeyListBody,
  ApiKeyRevoked,
  ApiRun,
  ApiRunCancelled,
  ApiRunEvent,
  ChatCompletion,
  EventsAccepted,
  HealthStatus,
  ModelListBody,
  Readiness,
  RunAccepted,
  RunListBody,
  RunResult,
  StatsSeriesBody,
  TenantLimitsView,
  TenantListBody,
  TenantUsageBody,
  UsageStatsBody,
} from "./api-schemas.js";
import { BOOTSTRAP_KEY, type Harness, parseSse, startHarness, until } from "./test-support/harness.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ agents: { notifier: { triggers: ["com.example.answers"] } } });
}, 60_000);

afterAll(async () => {
  await harness?.stop();
});

/** Object fields of `value` that `schema` does not name, at any depth (paths like `data[0].extra`). */
function undocumented(schema: z.ZodType, value: unknown, path = ""): string[] {
  let inner: z.ZodType = schema;
  // optional, nullable, default and pipes wrap the schema that names the fields
  for (;;) {
    const def = (inner as { def?: { type: string; innerType?: z.ZodType; in?: z.ZodType } }).def;
    if (def?.innerType) inner = def.innerType;
    else if (def?.type === "pipe" && def.in) inner = def.in;
    else break;
  }
  if (value === null || value === undefined) return [];
  if (inner instanceof z.ZodObject && typeof value === "object" && !Array.isArray(value)) {
    const shape = inner.shape as Record<string, z.ZodType>;
    const open = !(inner.def.catchall instanceof z.ZodNever) && inner.def.catchall !== undefined;
    return Object.entries(value).flatMap(([key, field]) => {
      const fieldSchema = shape[key];
      if (!fieldSchema) return open ? [] : [`${path}${path ? "." : ""}${key}`];
      return undocumented(fieldSchema, field, `${path}${path ? "." : ""}${key}`);
    });
  }
  if (inner instanceof z.ZodArray && Array.isArray(value))
    return value.flatMap((item, index) =>
      undocumented(inner.element as z.ZodType, item, `${path}[${index}]`),
    );
  if (inner instanceof z.ZodUnion && typeof value === "object") {
    // the variant that parses names the fields
    const variant = (inner.options as z.ZodType[]).find((option) => option.safeParse(value).success);
    return variant ? undocumented(variant, value, path) : [];
  }
  if (inner instanceof z.ZodRecord) return [];
  return [];
}

async function answer(
  schema: z.ZodType,
  path: string,
  init: RequestInit & { key?: string | null; status?: number } = {},
) {
  const headers = new Headers(init.headers);
  if (init.key !== null) headers.set("authorization", `Bearer ${init.key ?? BOOTSTRAP_KEY}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const response = await fetch(`${harness.url}${path}`, { ...init, headers });
  expect(response.status, path).toBe(init.status ?? 200);
  const body: unknown = await response.json();
  const parsed = schema.safeParse(body);
  expect(parsed.error?.issues ?? [], `${path}: ${JSON.stringify(body).slice(0, 500)}`).toEqual([]);
  expect(undocumented(schema, body), path).toEqual([]);
  return body as Record<string, unknown>;
}

describe("answers match the documented response schemas", () => {
  it("runs, events, models and probes", async () => {
    const queued = await answer(RunAccepted, "/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "hello", thread_id: `thread-${randomUUID()}` }),
      status: 202,
    });
    const runId = queued.id as string;
    await until(async () => {
      const response = await fetch(`${harness.url}/v1/runs/${runId}`, {
        headers: { authorization: `Bearer ${BOOTSTRAP_KEY}` },
      });
      return response.ok && ((await response.json()) as { status: string }).status === "completed";
    });
    await answer(ApiRun, `/v1/runs/${runId}`);
    await answer(RunListBody, "/v1/runs?limit=5");
    await answer(RunResult, "/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "wait", wait: true }),
    });
    await answer(ApiRunCancelled, `/v1/runs/${runId}/cancel`, { method: "POST" });
    const events = await fetch(`${harness.url}/v1/runs/${runId}/events`, {
      headers: { authorization: `Bearer ${BOOTSTRAP_KEY}` },
    });
    const lines = parseSse(await events.text()).map((frame) => JSON.parse(frame.data) as unknown);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(ApiRunEvent.safeParse(line).error?.issues ?? []).toEqual([]);
      expect(undocumented(ApiRunEvent, line)).toEqual([]);
    }
    await answer(EventsAccepted, "/v1/events", {
      method: "POST",
      body: JSON.stringify({
        specversion: "1.0",
        id: `evt-${randomUUID()}`,
        source: "test",
        type: "com.example.answers",
      }),
      status: 202,
    });
    await answer(ModelListBody, "/v1/models");
    await answer(ChatCompletion, "/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({ model: "assistant", messages: [{ role: "user", content: "hi" }] }),
    });
    await answer(HealthStatus, "/healthz", { key: null });
    await answer(Readiness, "/readyz", { key: null });
  });

  it("errors, stats and admin", async () => {
    await answer(HttpErrorBody, "/v1/runs/run_missing", { status: 404 });
    await answer(HttpErrorBody, "/v1/runs", { key: "sk-nope", status: 401 });
    await answer(HttpErrorBody, "/v1/runs", { method: "POST", body: "{}", status: 400 });
    await answer(UsageStatsBody, "/v1/stats?days=3");
    await answer(StatsSeriesBody, "/v1/stats/series?range=1h");
    const created = await answer(ApiKeyCreated, "/v1/admin/keys", {
      method: "POST",
      body: JSON.stringify({ tenant: "answers", name: "documented" }),
      status: 201,
    });
    await answer(ApiKeyListBody, "/v1/admin/keys?tenant=answers");
    await answer(TenantListBody, "/v1/admin/tenants");
    await answer(TenantLimitsView, "/v1/admin/tenants/answers/limits", {
      method: "PATCH",
      body: JSON.stringify({ requests_per_minute: 100 }),
    });
    await answer(TenantUsageBody, "/v1/admin/tenants/answers/usage");
    await answer(ApiKeyRevoked, `/v1/admin/keys/${created.id as string}`, { method: "DELETE" });
  });

  it("the check itself finds a field the schema does not name", () => {
    const schema = z.object({ data: z.array(z.object({ id: z.string() })) });
    expect(undocumented(schema, { data: [{ id: "a" }, { id: "b", extra: 1 }], more: true })).toEqual([
      "data[1].extra",
      "more",
    ]);
  });
});
