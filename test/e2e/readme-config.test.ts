/**
 * Every environment variable the services read is in the README's configuration: the keys of each
 * service's environment schema (`OwnEnv` in services/<name>/src/config.ts), the connection schema
 * every service shares (packages/config/src/service-env.ts), each `<SERVICE>_OPS_PORT`, and every
 * name read directly from the environment anywhere in the shipped sources.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Read from the environment but not the runtime's configuration. */
const NOT_CONFIGURATION = new Set(["PGUSER", "TEST_LOG_LEVEL"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "test-support" ? [] : sources(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** The keys of an object literal assigned to `const <name> = {` in a source file. */
function schemaKeys(path: string, name: string): string[] {
  const text = readFileSync(path, "utf8");
  const start = text.indexOf(`const ${name} = {`);
  if (start < 0) throw new Error(`no ${name} in ${path}`);
  const body = text.slice(start, text.indexOf("\n};", start));
  return [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((match) => match[1]!);
}

function environmentNames(): Set<string> {
  const names = new Set<string>();
  const services = readdirSync(join(root, "services"));
  for (const service of services) {
    for (const key of schemaKeys(join(root, "services", service, "src", "config.ts"), "OwnEnv"))
      names.add(key);
    names.add(`${service.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_OPS_PORT`);
  }
  for (const key of schemaKeys(join(root, "packages", "config", "src", "service-env.ts"), "ConnectionEnv"))
    names.add(key);
  const roots = [
    ...services.map((service) => join(root, "services", service, "src")),
    ...readdirSync(join(root, "packages")).map((pkg) => join(root, "packages", pkg, "src")),
  ];
  for (const file of roots.flatMap(sources)) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/\benv(?:\.|\[")([A-Z][A-Z0-9_]{2,})\b/g)) names.add(match[1]!);
  }
  for (const name of NOT_CONFIGURATION) names.delete(name);
  return names;
}

describe("README configuration", () => {
  it("names every environment variable the services read", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const names = environmentNames();
    // the scan found the schemas (a broken scan would pass with nothing to check)
    expect(names.size).toBeGreaterThan(50);
    for (const name of ["JOURNAL_COMMIT", "NATS_URL", "TOOL_EXECUTOR_OPS_PORT", "OTEL_TRACES_SAMPLER"])
      expect(names).toContain(name);
    const missing = [...names].filter((name) => !readme.includes(`\`${name}\``)).sort();
    expect(missing).toEqual([]);
  });
});
