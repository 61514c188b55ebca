/** The served OpenAPI document: a real linter's verdict, the routes it lists against the routes served, `/docs`. */
import { request } from "node:http";
import { Script } from "node:vm";
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { documentedRoutes } from "./openapi.js";
import { type Harness, startHarness } from "./test-support/harness.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(async () => {
  await harness?.stop();
});

interface Document {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>>;
}

async function servedDocument(): Promise<{ text: string; document: Document }> {
  const response = await fetch(`${harness.url}/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/application\/json/);
  const text = await response.text();
  return { text, document: JSON.parse(text) as Document };
}

/** Redocly's strictest built-in ruleset (every rule an error), all but the license rule: the project names none. */
async function lint(source: string) {
  const config = await createConfig({
    extends: ["recommended-strict"],
    rules: { "info-license": "off", "info-license-url": "off" },
  });
  const problems = await lintFromString({ source, absoluteRef: "/openapi.json", config });
  return problems.map(
    (problem) => `${problem.ruleId}: ${problem.message} at ${problem.location[0]?.pointer ?? "?"}`,
  );
}

describe("/openapi.json", () => {
  it("passes Redocly's recommended-strict lint with no problem at all", async () => {
    const { text, document } = await servedDocument();
    expect(document.openapi).toBe("3.1.0");
    expect(await lint(text)).toEqual([]);
  });

  it("the linter catches what the document must not do (undeclared path parameter, missing operationId)", async () => {
    const { document } = await servedDocument();
    const broken = structuredClone(document) as unknown as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
    };
    delete broken.paths["/v1/runs/{id}"]?.get?.parameters;
    delete broken.paths["/v1/runs"]?.get?.operationId;
    const problems = await lint(JSON.stringify(broken));
    expect(problems.some((problem) => problem.startsWith("path-parameters-defined"))).toBe(true);
    expect(problems.some((problem) => problem.startsWith("operation-operationId"))).toBe(true);
  });

  it("lists exactly the routes the server serves, each with an operationId, a 2xx and the error body", async () => {
    const { document } = await servedDocument();
    const inDocument = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path.replaceAll(/\{([^}]+)\}/g, ":$1")}`),
    );
    expect(new Set(inDocument).size).toBe(inDocument.length);
    expect([...inDocument].sort()).toEqual([...new Set(harness.ingress.routes)].sort());
    expect([...documentedRoutes()].sort()).toEqual([...inDocument].sort());
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        expect(operation.operationId, `${method} ${path}`).toMatch(/^[a-zA-Z]+$/);
        expect(Object.keys(operation.responses).some((status) => status.startsWith("2"))).toBe(true);
        expect(operation.responses["400"], `${method} ${path}`).toEqual({
          $ref: "#/components/responses/Error400",
        });
      }
    }
  });

  it("names every body field and query parameter in snake_case", async () => {
    const { document } = await servedDocument();
    const camel: string[] = [];
    // property names at any depth of the schemas and answers; the parameters of every operation
    const walk = (node: unknown, path: string): void => {
      if (!node || typeof node !== "object") return;
      const entries = Object.entries(node as Record<string, unknown>);
      for (const [key, value] of entries) {
        if (key === "properties" && value && typeof value === "object")
          for (const name of Object.keys(value))
            if (!/^[a-z][a-z0-9_]*$/.test(name)) camel.push(`${path}.${name}`);
        if (key === "parameters" && Array.isArray(value))
          for (const parameter of value as Array<{ name?: string; in?: string }>)
            if (parameter.in === "query" && !/^[a-z][a-z0-9_]*$/.test(parameter.name ?? ""))
              camel.push(`${path} ?${parameter.name}`);
        walk(value, `${path}/${key}`);
      }
    };
    walk(document, "");
    expect(camel).toEqual([]);
    // the stats and usage bodies are among those checked
    const schemas = (document as unknown as { components: { schemas: Record<string, unknown> } }).components
      .schemas;
    expect(JSON.stringify(schemas.StatsSeries)).toContain('"cache_savings"');
    expect(JSON.stringify(schemas.UsageStats)).toContain('"unpriced_calls"');
    expect(JSON.stringify(schemas.TenantUsage)).toContain('"avg_latency_ms"');
  });

  it("names the server it was asked at, and the listening address when the Host header is unfit", async () => {
    const { document } = await servedDocument();
    expect(document.servers[0]?.url).toBe(harness.url);
    const withHost = (host: string) =>
      new Promise<Document>((resolve, reject) => {
        const asked = request(`${harness.url}/openapi.json`, { headers: { host } }, (response) => {
          let body = "";
          response.setEncoding("utf8").on("data", (chunk: string) => {
            body += chunk;
          });
          response.on("end", () => resolve(JSON.parse(body) as Document));
        });
        asked.on("error", reject).end();
      });
    expect((await withHost("api.example.test:8443")).servers[0]?.url).toBe("http://api.example.test:8443");
    expect((await withHost("evil.test/<script>")).servers[0]?.url).toBe(harness.url);
  });
});

describe("/docs", () => {
  it("serves a page that renders the document with its own script, without a key", async () => {
    const page = await fetch(`${harness.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toMatch(/<script src="\/docs\/app\.js">/);
    // nothing loaded from elsewhere
    expect(html).not.toMatch(/(src|href)="https?:/);
    const script = await fetch(`${harness.url}/docs/app.js`);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    const source = await script.text();
    expect(source).toMatch(/fetch\("\/openapi\.json"\)/);
    expect(() => new Script(source)).not.toThrow();
  });
});
