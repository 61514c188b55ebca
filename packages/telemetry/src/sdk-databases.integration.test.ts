/**
 * Postgres queries and Redis commands made inside a traced operation are spans of its trace,
 * although pg and ioredis were imported (as ESM, before the SDK started) where the
 * instrumentations' require hook never sees them.
 */
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";
import { startCollector } from "./test-support.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const Value = z.object({
  stringValue: z.string().nullish(),
  intValue: z.union([z.string(), z.number()]).nullish(),
});
const ExportedSpan = z.object({
  traceId: z.string(),
  spanId: z.string(),
  parentSpanId: z.string().nullish(),
  name: z.string(),
  attributes: z.array(z.object({ key: z.string(), value: Value })).nullish(),
});
type ExportedSpan = z.infer<typeof ExportedSpan>;
const TraceExport = z.object({
  resourceSpans: z.array(z.object({ scopeSpans: z.array(z.object({ spans: z.array(ExportedSpan) })) })),
});

const attributes = (span: ExportedSpan) =>
  Object.fromEntries(
    (span.attributes ?? []).map(({ key, value }) => [key, value.stringValue ?? value.intValue]),
  );

// Each test file runs in a fresh worker: this SDK start, exporting to the collector below, is our own.
const spans: ExportedSpan[] = [];
let collector: Awaited<ReturnType<typeof startCollector>>;

beforeAll(async () => {
  collector = await startCollector((request) => {
    if (request.path !== "/v1/traces") return;
    const body = TraceExport.parse(JSON.parse(request.body));
    for (const resource of body.resourceSpans)
      for (const scope of resource.scopeSpans) spans.push(...scope.spans);
  });
});

afterAll(() => collector.close());

describe("database spans", () => {
  it("traces pg queries and ioredis commands inside a traced operation, and nothing outside one", async () => {
    const telemetry = await startTelemetry({ service: "databases-test" });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const redis = new Redis(REDIS_URL, { lazyConnect: true });
    await redis.connect();
    const key = `telemetry-test:${process.pid}:${Date.now()}`;
    try {
      await pool.query("SELECT 'outside' AS untraced"); // no parent: no span
      let traceId = "";
      let parentId = "";
      await withSpan("store work", async (span) => {
        ({ traceId, spanId: parentId } = span.spanContext());
        await pool.query("SELECT $1::int AS answer", [42]);
        await redis.set(key, "secret-value", "EX", 30);
        await redis.get(key);
      });
      await telemetry.shutdown();

      const ofTrace = spans.filter((span) => span.traceId === traceId);
      const queries = ofTrace.filter((span) => attributes(span)["db.system.name"] === "postgresql");
      const statement = queries.find((span) => String(attributes(span)["db.query.text"]).includes("$1::int"));
      expect(statement, ofTrace.map((span) => span.name).join(", ")).toBeDefined();
      expect(statement!.parentSpanId).toBe(parentId);
      // the statement's text, never its values
      expect(JSON.stringify(statement!.attributes)).not.toContain("42");

      const commands = ofTrace.filter((span) => attributes(span)["db.system.name"] === "redis");
      expect(commands.map((span) => span.name)).toEqual(expect.arrayContaining(["set", "get"]));
      for (const command of commands) expect(command.parentSpanId).toBe(parentId);
      // the command's name only: neither the key nor the value
      expect(JSON.stringify(commands.map((span) => span.attributes))).not.toMatch(
        /secret-value|telemetry-test/,
      );

      expect(JSON.stringify(spans)).not.toContain("untraced");
    } finally {
      await redis.del(key).catch(() => undefined);
      redis.disconnect();
      await pool.end();
    }
  });
});
