/**
 * `/docs` in a real browser (playwright-core driving the machine's Chromium): every operation of the
 * served document is rendered with its parameters, request body and responses, the page loads
 * nothing from elsewhere and logs no error.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../support/stack.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let stack: Stack;
let browser: Browser | undefined;

beforeAll(async () => {
  stack = await startStack({
    bootstrapApiKey: "sk-docs-page-tests",
    without: ["tool-executor", "orchestrator"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe("/docs", () => {
  it("renders every operation of /openapi.json, loading nothing from elsewhere", async () => {
    const document = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    const operations = Object.values(document.paths).flatMap((item) =>
      Object.values(item).map((operation) => operation.operationId),
    );

    expect(existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium`).toBe(true);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(String(error)));
    const elsewhere: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(stack.url) && !request.url().startsWith("data:"))
        elsewhere.push(request.url());
    });

    await page.goto(`${stack.url}/docs`);
    await page.waitForSelector("section.op");
    const rendered = await page
      .locator("section.op")
      .evaluateAll((sections) => sections.map((section) => section.id));
    // grouped by tag on the page: the same operations, each once
    expect([...rendered].sort()).toEqual([...operations].sort());
    // the runs operation: its header parameter, its body schema's fields, its answers and the error body
    const createRun = page.locator("#createRun");
    await expect.poll(() => createRun.locator("td code").allTextContents()).toContain("idempotency-key");
    const text = await createRun.innerText();
    for (const shown of ["CreateRunRequest", "thread_id", "priority", "RunAccepted", "202", "400", "429"])
      expect(text).toContain(shown);
    // an answer's schema is shown open; a schema named inside it opens on demand
    expect(text).toContain("queue_depth");
    expect(text).not.toContain("cached_tokens");
    await createRun
      .locator("summary", { hasText: /^Usage$/ })
      .first()
      .click();
    await expect.poll(() => createRun.innerText()).toContain("cached_tokens");
    // the sidebar links every operation
    expect(await page.locator("#toc a").count()).toBe(operations.length);
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
  }, 90_000);
});
