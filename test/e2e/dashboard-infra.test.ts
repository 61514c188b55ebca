/**
 * The Grafana dashboard and Prometheus alert rules under infra/ parse, and every metric
 * they name is one some service registers (read from the services' sources).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const NOT_METRICS = new Set([
  "sum",
  "max",
  "min",
  "avg",
  "by",
  "rate",
  "histogram_quantile",
  "ignoring",
  "group_left",
  "on",
  "and",
  "or",
  "unless",
  "without",
  "count",
  "increase",
  "le",
  "bool",
  "offset",
]);

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    if (entry === "node_modules" || entry === "dist") continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (path.endsWith(".ts") && !path.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

/** Metric names registered through `createMetrics` (counter, histogram, gauge). */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const file of [...sourceFiles(join(root, "services")), ...sourceFiles(join(root, "packages"))]) {
    for (const match of readFileSync(file, "utf8").matchAll(/\.(?:counter|histogram|gauge)\(\s*"([a-z_]+)"/g))
      names.add(match[1]!);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricsIn(expr: string): string[] {
  const stripped = expr
    .replace(/\{[^}]*\}/g, "")
    .replace(/\b(by|without|ignoring|on|group_left|group_right)\s*\([^)]*\)/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/"[^"]*"/g, "");
  return [...stripped.matchAll(/\b([a-z_][a-z0-9_]*)\b(?!\s*\()/g)]
    .map((match) => match[1]!)
    .filter((name) => !NOT_METRICS.has(name))
    .map((name) => name.replace(/_(bucket|sum|count)$/, ""));
}

describe("Grafana dashboard and alert rules", () => {
  const exported = exportedMetrics();

  it("the Grafana dashboard parses and names only exported metrics", () => {
    const dashboard = JSON.parse(readFileSync(join(root, "infra/grafana/agent-runtime.json"), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    expect(dashboard.panels.length).toBeGreaterThan(5);
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets)
        for (const metric of metricsIn(target.expr))
          expect(exported, `${panel.title}: ${metric}`).toContain(metric);
    }
  });

  it("the alert rules parse and name only exported metrics", () => {
    const rules = parse(readFileSync(join(root, "infra/alerts/agent-runtime.rules.yaml"), "utf8")) as {
      groups: Array<{
        name: string;
        rules: Array<{ alert: string; expr: string; for?: string; labels?: object }>;
      }>;
    };
    const alerts = rules.groups.flatMap((group) => group.rules);
    expect(alerts.map((rule) => rule.alert)).toEqual(
      expect.arrayContaining([
        "IngressErrorRateHigh",
        "IngressLatencyP99High",
        "RunQueueLagging",
        "ProviderBreakerOpen",
        "SpendBurnHigh",
      ]),
    );
    for (const rule of alerts) {
      expect(rule.expr, rule.alert).toBeTruthy();
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      for (const metric of metricsIn(rule.expr))
        expect(exported, `${rule.alert}: ${metric}`).toContain(metric);
    }
  });
});
