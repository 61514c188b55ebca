import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Consumers, RunPriority, Streams, Subjects } from "@agent-runtime/contracts";
import { loadConfig as loadIngressConfig } from "@agent-runtime/ingress";
import { loadConfig as loadMemoryConfig } from "@agent-runtime/memory";
import { loadConfig as loadModelProxyConfig } from "@agent-runtime/model-proxy";
import { loadConfig as loadOrchestratorConfig } from "@agent-runtime/orchestrator";
import { loadConfig as loadToolExecutorConfig } from "@agent-runtime/tool-executor";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SERVICES = ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"] as const;
type ServiceName = (typeof SERVICES)[number];
const loaders: Record<ServiceName, (env: NodeJS.ProcessEnv) => unknown> = {
  ingress: loadIngressConfig,
  orchestrator: loadOrchestratorConfig,
  "model-proxy": loadModelProxyConfig,
  "tool-executor": loadToolExecutorConfig,
  memory: loadMemoryConfig,
};
const hasKubectl = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;
const PROD = "infra/k8s/overlays/prod";
const OVERLAYS = ["infra/k8s/overlays/prod", "infra/k8s/overlays/dev"];
const scratch = mkdtempSync(join(tmpdir(), "infra-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface ComposeService {
  image?: string;
  profiles?: string[];
  command?: string[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
}
interface EnvVar {
  name: string;
  value?: string;
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface KubeObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    template?: {
      spec: {
        containers: { env?: EnvVar[]; livenessProbe?: Probe; readinessProbe?: Probe }[];
      };
    };
  };
}

function readCompose(): { services: Record<string, ComposeService> } {
  return parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true });
}

/** What compose puts in the container with an empty host environment. */
function composeEnvironment(service: ComposeService): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(service.environment ?? {})) {
    if (value === null) continue; // passed through from the host only when set there
    env[name] = value.replace(/\$\{\w+(?::?-([^}]*))?\}/g, (_match, fallback?: string) => fallback ?? "");
  }
  // the config file compose mounts, read from where it is on the host
  for (const volume of service.volumes ?? []) {
    const [host, container] = volume.replace(/\$\{\w+:-([^}]*)\}/, "$1").split(":");
    if (container && env.AGENT_CONFIG === container) env.AGENT_CONFIG = join(root, host!);
  }
  return env;
}

function checkManifests(built: string): ReturnType<typeof spawnSync> {
  return spawnSync(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      "infra/check-manifests.ts",
      "--built",
      built,
      "--secret",
      "infra/k8s/secret.example.yaml",
      "--compose",
      "docker-compose.yml",
    ],
    { cwd: root, encoding: "utf8" },
  );
}

describe("infra/validate.sh", () => {
  it("validates the Kubernetes manifests and docker-compose.yml", () => {
    const output = execFileSync(join(root, "infra", "validate.sh"), { cwd: root, encoding: "utf8" });
    expect(output).toMatch(/^ok {2}kubernetes \(prod\): \d+ objects/m);
    expect(output).toMatch(/^ok {2}kubernetes \(dev\): \d+ objects/m);
    expect(output).toMatch(/^ok {2}secret template: Secret\/agent-runtime-secrets/m);
    expect(output).toMatch(/^ok {2}docker-compose\.yml: 10 services/m);
    expect(output).toMatch(/^ok {2}observability profile: prometheus scrapes 5 targets/m);
  });

  it.skipIf(!hasKubectl)("rejects manifests that break the runtime's expectations", () => {
    const built = execFileSync("kubectl", ["kustomize", PROD], { cwd: root, encoding: "utf8" });
    const path = join(scratch, "broken.yaml");
    writeFileSync(
      path,
      built
        .replace("path: /readyz", "path: /ready")
        .replace(/minReplicas: 2/, "minReplicas: 1")
        .replace(/registry\.example\.com\/agent-runtime:[\w.-]+/, "registry.example.com/agent-runtime:latest")
        .replace("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 10"),
    );
    // and without memory's PodDisruptionBudget
    const documents = parseAllDocuments(readFileSync(path, "utf8")).filter((document) => {
      const object = document.toJSON() as KubeObject | null;
      return !(object?.kind === "PodDisruptionBudget" && object.metadata.name === "memory");
    });
    writeFileSync(path, documents.map((document) => document.toString()).join("---\n"));
    const result = checkManifests(path);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/readiness probe must GET \/readyz/);
    expect(result.stderr).toMatch(/minReplicas must be >= 2/);
    expect(result.stderr).toMatch(/must be pinned/);
    expect(result.stderr).toMatch(/terminationGracePeriodSeconds must be preStop/);
    expect(result.stderr).toMatch(/PodDisruptionBudget\/memory/);
  });
});

describe("docker-compose.yml", () => {
  const compose = readCompose();

  it("runs the five services against its own NATS (JetStream), Postgres (pgvector) and Redis", () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ["nats", "postgres", "redis", "prometheus", "grafana", ...SERVICES].sort(),
    );
    // Prometheus and Grafana only with `--profile observability`
    for (const name of ["prometheus", "grafana"])
      expect(compose.services[name]?.profiles).toEqual(["observability"]);
    for (const name of ["nats", "postgres", "redis", ...SERVICES])
      expect(compose.services[name]?.profiles).toBeUndefined();
    expect(compose.services.nats?.command).toContain("-js");
    expect(compose.services.postgres?.image).toMatch(/^pgvector\/pgvector:pg16/);
    expect(compose.services.ingress?.ports).toContain("8080:8080");
    for (const name of ["nats", "postgres", "redis"])
      expect(compose.services[name]?.healthcheck).toBeDefined();
    for (const name of SERVICES) {
      const service = compose.services[name]!;
      expect(service.environment?.NATS_URL).toBe("nats://nats:4222");
      expect(service.environment?.DATABASE_URL).toBe("postgres://postgres@postgres:5432/postgres");
      expect(service.environment?.REDIS_URL).toBe("redis://redis:6379");
      expect(service.environment?.SERVICE).toBe(name);
      for (const dependency of ["nats", "postgres", "redis"])
        expect(service.depends_on?.[dependency]?.condition).toBe("service_healthy");
      // the config file is mounted read-only where AGENT_CONFIG points
      expect(service.environment?.AGENT_CONFIG).toBe("/etc/agent-runtime/config.yaml");
      expect(service.volumes).toContain(
        "${AGENT_CONFIG_FILE:-./infra/compose/agent-config.yaml}:/etc/agent-runtime/config.yaml:ro",
      );
    }
    // `docker compose up -d nats postgres redis`: the servers alone, reachable from the host only
    for (const [name, port] of [
      ["nats", 4222],
      ["postgres", 5432],
      ["redis", 6379],
    ] as const) {
      expect(compose.services[name]?.depends_on).toBeUndefined();
      expect(compose.services[name]?.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    }
  });

  it("is refused when Prometheus would not scrape a service's metrics port", () => {
    const broken = join(scratch, "compose");
    mkdirSync(join(broken, "infra", "prometheus"), { recursive: true });
    cpSync(join(root, "infra", "alerts"), join(broken, "infra", "alerts"), { recursive: true });
    cpSync(join(root, "infra", "grafana"), join(broken, "infra", "grafana"), { recursive: true });
    cpSync(join(root, "infra", "compose"), join(broken, "infra", "compose"), { recursive: true });
    writeFileSync(
      join(broken, "infra", "prometheus", "prometheus.yml"),
      readFileSync(join(root, "infra", "prometheus", "prometheus.yml"), "utf8").replace(
        "memory:9104",
        "memory:9999",
      ),
    );
    writeFileSync(join(broken, "docker-compose.yml"), readFileSync(join(root, "docker-compose.yml"), "utf8"));
    const result = spawnSync(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        "infra/check-manifests.ts",
        "--kustomization",
        "infra/k8s/base",
        "--secret",
        "infra/k8s/secret.example.yaml",
        "--compose",
        join(broken, "docker-compose.yml"),
      ],
      { cwd: root, encoding: "utf8" },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no scrape target memory:9104/);
  });

  it.each(SERVICES)("gives %s an environment its config accepts", (name) => {
    const env = composeEnvironment(compose.services[name]!);
    expect(() => loaders[name](env)).not.toThrow();
  });
});

describe.skipIf(!hasKubectl)(`Kubernetes manifests (kubectl kustomize ${PROD})`, () => {
  const objects = hasKubectl
    ? parseAllDocuments(execFileSync("kubectl", ["kustomize", PROD], { cwd: root, encoding: "utf8" }))
        .map((document) => document.toJSON() as KubeObject)
        .filter(Boolean)
    : [];
  const find = (kind: string, name: string) =>
    objects.find((object) => object.kind === kind && object.metadata.name === name);

  it.each(SERVICES)("deploys %s with liveness /healthz and readiness /readyz probes", (name) => {
    const deployment = find("Deployment", name);
    expect(deployment?.metadata.namespace).toBe("agent-runtime");
    const container = deployment?.spec?.template?.spec.containers[0];
    expect(container?.livenessProbe?.httpGet.path).toBe("/healthz");
    expect(container?.readinessProbe?.httpGet.path).toBe("/readyz");
    expect(find("Service", name)).toBeDefined();
    expect(find("HorizontalPodAutoscaler", name) ?? find("ScaledObject", name)).toBeDefined();
    expect(find("PodDisruptionBudget", name)).toBeDefined();
  });

  it.each(SERVICES)("gives %s an environment and example AGENT_CONFIG its config accepts", (name) => {
    const configPath = join(scratch, `${name}-config.yaml`);
    writeFileSync(configPath, find("ConfigMap", "agent-runtime-config")?.data?.["config.yaml"] ?? "");
    const env: NodeJS.ProcessEnv = {
      ...find("ConfigMap", "agent-runtime-env")?.data,
      ...Object.fromEntries(
        (find("Deployment", name)?.spec?.template?.spec.containers[0]?.env ?? []).map((variable) => [
          variable.name,
          variable.value,
        ]),
      ),
      OPENAI_API_KEY: "sk-test",
      AGENT_CONFIG: configPath,
    };
    expect(() => loaders[name](env)).not.toThrow();
  });
});

/** Each durable consumer the services create, with its stream, read from their sources. */
function consumersInCode(): Map<string, string> {
  const consumers = new Map<string, string>();
  for (const service of SERVICES) {
    const dir = join(root, "services", service, "src");
    for (const file of readdirSync(dir).filter(
      (name) => name.endsWith(".ts") && !name.endsWith(".test.ts"),
    )) {
      const lines = readFileSync(join(dir, file), "utf8").split("\n");
      lines.forEach((line, index) => {
        // a durable is named in contracts (`Consumers.events`, `Consumers.runs(priority)`) or spelled out
        const named = /durable:\s*Consumers\.(\w+)(\(priority\))?/.exec(line);
        const entry = named ? (Consumers as Record<string, unknown>)[named[1]!] : undefined;
        const spelled = /durable:\s*[`"]([^`"]+)[`"]/.exec(line)?.[1];
        const names =
          typeof entry === "function"
            ? RunPriority.options.map((priority) => String(entry(priority)))
            : typeof entry === "string"
              ? [entry]
              : spelled?.includes("${priority}")
                ? RunPriority.options.map((priority) => spelled.replace("${priority}", priority))
                : spelled
                  ? [spelled]
                  : [];
        if (names.length === 0) return;
        const near = lines.slice(Math.max(0, index - 8), index + 8).join("\n");
        const stream = /stream:\s*"([A-Z_]+)"/.exec(near)?.[1] ?? "?";
        for (const name of names) consumers.set(name, stream);
      });
    }
  }
  return consumers;
}

describe.skipIf(!hasKubectl).each(OVERLAYS)("what %s names exists in the contracts and code", (overlay) => {
  const objects = hasKubectl
    ? (parseAllDocuments(execFileSync("kubectl", ["kustomize", overlay], { cwd: root, encoding: "utf8" }))
        .map((document) => document.toJSON())
        .filter(Boolean) as Array<{
        kind: string;
        metadata: { name: string; annotations?: Record<string, string> };
        spec?: { triggers?: Array<{ type: string; metadata: Record<string, string> }> };
      }>)
    : [];
  const scaledObjects = objects.filter((object) => object.kind === "ScaledObject");
  const streams = new Set<string>(Object.values(Streams));
  const staticSubjects = new Set(Object.values(Subjects).filter((value) => typeof value === "string"));

  it("scales the orchestrator and memory on the lag of consumers that exist, on their streams", () => {
    const inCode = consumersInCode();
    expect([...inCode.keys()]).toEqual(
      expect.arrayContaining([
        "orchestrator-interactive",
        "orchestrator-batch",
        "memory-jobs",
        "memory-turns",
      ]),
    );
    expect(scaledObjects.map((object) => object.metadata.name).sort()).toEqual(["memory", "orchestrator"]);
    const named: string[] = [];
    for (const object of scaledObjects)
      for (const trigger of object.spec?.triggers ?? []) {
        if (trigger.type !== "nats-jetstream") continue;
        const { stream, consumer } = trigger.metadata;
        named.push(`${stream}/${consumer}`);
        expect(streams, `stream ${stream}`).toContain(stream);
        expect(inCode.get(consumer!), `consumer ${consumer} (${object.metadata.name})`).toBe(stream);
      }
    // every work queue the two services consume is watched
    for (const [consumer, stream] of inCode)
      if (consumer.startsWith("orchestrator-") || consumer.startsWith("memory-"))
        expect(named, `${stream}/${consumer} has no lag trigger`).toContain(`${stream}/${consumer}`);
  });

  it("names only subjects of the contracts", () => {
    const subjects = scaledObjects.flatMap((object) =>
      (object.metadata.annotations?.["agent-runtime.io/subjects"] ?? "")
        .split(",")
        .map((subject) => subject.trim()),
    );
    expect(subjects.length).toBeGreaterThan(0);
    for (const subject of subjects) expect(staticSubjects, subject).toContain(subject);
  });
});

describe("capacity plan (pnpm capacity)", () => {
  it("docs/capacity.md and the pods' resources are what the script makes of the kept ledger", () => {
    const result = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "scripts/capacity/main.ts",
        "--ledger",
        "docs/capacity/ledger-input.json",
        "--memory",
        "docs/capacity/memory-input.json",
        "--check",
      ],
      { cwd: root, encoding: "utf8" },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/capacity plan up to date/);
    const plan = readFileSync(join(root, "docs/capacity.md"), "utf8");
    for (const section of [
      "## What a turn costs",
      "## Replicas and servers",
      "## A day of traffic (simulation)",
    ])
      expect(plan).toContain(section);
  });
});

describe("scripts/start.mjs", () => {
  const isolation = newIsolation("start");
  afterAll(() => dropIsolation(isolation));

  function start(env: NodeJS.ProcessEnv): {
    child: ChildProcess;
    output: () => string;
    exit: Promise<number | null>;
  } {
    const child = spawn(process.execPath, ["scripts/start.mjs"], {
      cwd: root,
      env: { ...process.env, ...isolatedEnv(isolation), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exit = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    return { child, output: () => output, exit };
  }

  async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > until) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it("refuses unknown names in SERVICES", async () => {
    const run = start({ SERVICES: "ingress,nope" });
    expect(await run.exit).toBe(2);
    expect(run.output()).toMatch(/unknown service\(s\) in SERVICES: nope/);
  });

  it("runs a subset with prefixed JSON lines and drains every service on SIGTERM", async () => {
    const run = start({ SERVICES: "tool-executor,model-proxy" });
    try {
      await waitFor(
        () => run.output().includes("tool-executor ready") && run.output().includes("model-proxy ready"),
        60_000,
      );
    } catch (error) {
      run.child.kill("SIGKILL");
      throw new Error(`services did not get ready:\n${run.output().slice(-3000)}`, { cause: error });
    }
    run.child.kill("SIGTERM");
    expect(await run.exit).toBe(0);
    const lines = run.output().split("\n");
    for (const name of ["tool-executor", "model-proxy"]) {
      const own = lines.filter((line) => line.startsWith(`[${name}] {`));
      const messages = own.map((line) => (JSON.parse(line.slice(name.length + 3)) as { msg: string }).msg);
      // the ready line names what the service reached: "<name> ready · nats … · postgres …"
      expect(messages.some((message) => message.startsWith(`${name} ready`))).toBe(true);
      expect(messages).toContain("shutdown complete");
    }
    expect(run.output()).not.toMatch(/^\[(memory|ingress|orchestrator)\]/m);
  });

  it("stops the others and exits non-zero when one service exits", async () => {
    // MAX_RETRIES is model-proxy's alone: it fails its config check, memory does not.
    const run = start({ SERVICES: "memory,model-proxy", MAX_RETRIES: "-1" });
    const code = await run.exit;
    expect(code).not.toBe(0);
    expect(run.output()).toMatch(/^\[model-proxy\] \{.*MAX_RETRIES/m);
    expect(run.output()).toMatch(/model-proxy exited unexpectedly/);
    expect(run.output()).toMatch(/memory stopped/);
  });
});
