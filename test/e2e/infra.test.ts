import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

describe("deployment files", () => {
  it("pass the manifest and compose checks", () => {
    const output = execFileSync(join(root, "infra", "validate.sh"), { cwd: root, encoding: "utf8" });
    expect(output).toMatch(/objects pass the schema checks/);
  });

  it("compose runs the five services against its own NATS, Postgres and Redis", () => {
    const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
      services: Record<
        string,
        { environment?: Record<string, string>; depends_on?: Record<string, unknown> }
      >;
    };
    for (const name of ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"]) {
      const service = compose.services[name]!;
      expect(service.environment?.NATS_URL).toBe("nats://nats:4222");
      expect(service.environment?.DATABASE_URL).toMatch(/@postgres:5432/);
      expect(service.environment?.SERVICE).toBe(name);
      expect(Object.keys(service.depends_on ?? {})).toEqual(["nats", "postgres", "redis"]);
    }
  });

  it("the check fails on a broken manifest", () => {
    const broken =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: ingress, namespace: x }\nspec: { replicas: 1 }\n";
    const path = join(root, "test", "bench", "results", "broken-manifest.yaml");
    writeFileSync(path, broken);
    try {
      expect(() =>
        execFileSync(
          process.execPath,
          ["--conditions=source", "--import", "tsx", "infra/check-manifests.ts", path, "docker-compose.yml"],
          {
            cwd: root,
            stdio: "pipe",
          },
        ),
      ).toThrow();
    } finally {
      rmSync(path);
    }
  });
});
