/**
 * Offline checks of the deployment files (no cluster, no docker engine):
 * the built Kubernetes manifests, the Secret template and docker-compose.yml
 * are checked against the fields and cross-references this runtime relies on.
 *
 *   check-manifests.ts --built <kustomize-output.yaml> | --kustomization <dir>
 *                      --secret <secret.example.yaml> --compose <docker-compose.yml> [--overlay dev|prod]
 *
 * With `--overlay dev` the replica floors of high availability are not required.
 *
 * `--kustomization` is a fallback for machines without kubectl: it applies the
 * two kustomize features used here (resources, namespace) and nothing else.
 * Prints one line per check group; exits 1 listing every problem found.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { parse, parseAllDocuments } from "yaml";
import { z } from "zod";

let NAMESPACE = "agent-runtime";
const SERVICES = ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"] as const;
const HIGHLY_AVAILABLE = new Set(["ingress", "orchestrator", "model-proxy"]);
/** Scaled by KEDA on JetStream consumer lag (their work waits in a stream); the others by an HPA on CPU. */
const QUEUE_SCALED = new Set(["orchestrator", "memory"]);
/** The preStop hook's sleep (seconds) and the margin the grace period keeps after the drain. */
const PRE_STOP_SECONDS = 3;
const GRACE_MARGIN_SECONDS = 2;
/** Each service's HTTP port; ingress serves `/metrics` on a separate ops port, never on its public one. */
const PORTS: Record<
  string,
  { variable: string; port: number; metrics?: { variable: string; port: number } }
> = {
  ingress: { variable: "PORT", port: 8080, metrics: { variable: "OPS_PORT", port: 9100 } },
  orchestrator: { variable: "OPS_PORT", port: 9101 },
  "model-proxy": { variable: "OPS_PORT", port: 9102 },
  "tool-executor": { variable: "OPS_PORT", port: 9103 },
  memory: { variable: "OPS_PORT", port: 9104 },
};
const CONFIG_MOUNT = "/etc/agent-runtime";
/** What a container runs: the service's compiled entry in the image (WORKDIR /app), never TypeScript. */
const compiledEntry = (service: string) => ["node", `/app/services/${service}/dist/main.js`];

type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
} & Record<string, unknown>;

const PortRef = z.union([z.string(), z.number()]);
const Probe = z.object({ httpGet: z.object({ path: z.string(), port: PortRef }) });
const Container = z.object({
  name: z.string(),
  image: z.string().min(1),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(z.object({ name: z.string(), value: z.string().optional() })).default([]),
  envFrom: z
    .array(
      z.object({
        configMapRef: z.object({ name: z.string(), optional: z.boolean().optional() }).optional(),
        secretRef: z.object({ name: z.string(), optional: z.boolean().optional() }).optional(),
      }),
    )
    .default([]),
  ports: z
    .array(z.object({ name: z.string().optional(), containerPort: z.number().int().positive() }))
    .min(1),
  startupProbe: Probe.optional(),
  livenessProbe: Probe,
  readinessProbe: Probe,
  lifecycle: z.object({ preStop: z.object({}).passthrough() }),
  resources: z.object({
    requests: z.object({ cpu: z.string(), memory: z.string() }),
    limits: z.object({ memory: z.string() }).passthrough(),
  }),
  volumeMounts: z.array(z.object({ name: z.string(), mountPath: z.string() })).default([]),
});
type Container = z.infer<typeof Container>;
const Deployment = z.object({
  apiVersion: z.literal("apps/v1"),
  spec: z.object({
    selector: z.object({ matchLabels: z.record(z.string(), z.string()) }),
    template: z.object({
      metadata: z.object({
        labels: z.record(z.string(), z.string()),
        annotations: z.record(z.string(), z.string()).default({}),
      }),
      spec: z.object({
        terminationGracePeriodSeconds: z.number().int().min(10),
        securityContext: z.object({ runAsNonRoot: z.literal(true) }).passthrough(),
        containers: z.array(Container).length(1),
        volumes: z
          .array(
            z
              .object({ name: z.string(), configMap: z.object({ name: z.string() }).optional() })
              .passthrough(),
          )
          .default([]),
      }),
    }),
  }),
});
const Service = z.object({
  apiVersion: z.literal("v1"),
  spec: z.object({
    selector: z.record(z.string(), z.string()),
    ports: z.array(z.object({ port: z.number().int().positive(), targetPort: PortRef })).min(1),
  }),
});
const Hpa = z.object({
  apiVersion: z.literal("autoscaling/v2"),
  spec: z.object({
    scaleTargetRef: z.object({
      apiVersion: z.literal("apps/v1"),
      kind: z.literal("Deployment"),
      name: z.string(),
    }),
    minReplicas: z.number().int().positive(),
    maxReplicas: z.number().int().positive(),
    metrics: z
      .array(
        z.object({ type: z.string(), resource: z.object({ name: z.string() }).passthrough().optional() }),
      )
      .min(1),
  }),
});
const ScaledObject = z.object({
  apiVersion: z.literal("keda.sh/v1alpha1"),
  spec: z.object({
    scaleTargetRef: z.object({ name: z.string() }),
    minReplicaCount: z.number().int().nonnegative(),
    maxReplicaCount: z.number().int().positive(),
    triggers: z.array(z.object({ type: z.string(), metadata: z.record(z.string(), z.string()) })).min(1),
  }),
});
const Pdb = z.object({
  apiVersion: z.literal("policy/v1"),
  spec: z.object({ selector: z.object({ matchLabels: z.record(z.string(), z.string()) }) }).passthrough(),
});
const SecretTemplate = z.object({
  apiVersion: z.literal("v1"),
  kind: z.literal("Secret"),
  metadata: z.object({ name: z.string() }),
  stringData: z.object({ OPENAI_API_KEY: z.string(), BOOTSTRAP_API_KEY: z.string() }),
});
const AgentConfigShape = z.object({
  providers: z.record(z.string(), z.object({ baseUrl: z.string().url() }).passthrough()),
  models: z.record(z.string(), z.object({ provider: z.string() }).passthrough()),
  tiers: z.record(z.string(), z.array(z.string()).min(1)),
  agents: z.record(z.string(), z.object({}).passthrough()),
});
const ComposeService = z.object({
  image: z.string().optional(),
  build: z.unknown().optional(),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  environment: z.record(z.string(), z.union([z.string(), z.null()])).optional(),
  healthcheck: z
    .object({ test: z.union([z.string(), z.array(z.string())]) })
    .passthrough()
    .optional(),
  depends_on: z.record(z.string(), z.object({ condition: z.string() })).optional(),
  ports: z.array(z.union([z.string(), z.number()])).optional(),
  volumes: z.array(z.string()).optional(),
  profiles: z.array(z.string()).optional(),
});
const Compose = z.object({ services: z.record(z.string(), ComposeService) });
const PrometheusConfig = z.object({
  rule_files: z.array(z.string()).min(1),
  scrape_configs: z
    .array(
      z.object({
        job_name: z.string(),
        metrics_path: z.string().optional(),
        static_configs: z.array(z.object({ targets: z.array(z.string()).min(1) })),
      }),
    )
    .min(1),
});
const GrafanaDatasources = z.object({
  datasources: z
    .array(z.object({ type: z.string(), url: z.string(), isDefault: z.boolean().optional() }))
    .min(1),
});
const GrafanaDashboards = z.object({
  providers: z.array(z.object({ type: z.literal("file"), options: z.object({ path: z.string() }) })).min(1),
});

const problems: string[] = [];
const report: string[] = [];

function check<T>(schema: z.ZodType<T>, value: unknown, label: string): T | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues)
    problems.push(`${label}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  return undefined;
}

function expect(condition: boolean, problem: string): void {
  if (!condition) problems.push(problem);
}

function readDocuments(path: string): KubeObject[] {
  return parseAllDocuments(readFileSync(path, "utf8"))
    .map((document) => {
      if (document.errors.length > 0)
        problems.push(`${path}: ${document.errors.map((e) => e.message).join("; ")}`);
      return document.toJSON() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null && typeof object === "object");
}

/** Just enough kustomize for these manifests when kubectl is not installed. */
function buildKustomization(directory: string): KubeObject[] {
  const kustomization = parse(readFileSync(join(directory, "kustomization.yaml"), "utf8")) as {
    namespace?: string;
    resources?: string[];
  };
  return (kustomization.resources ?? []).flatMap((resource) =>
    readDocuments(join(directory, resource)).map((object) =>
      object.kind === "Namespace" || !kustomization.namespace
        ? object
        : { ...object, metadata: { ...object.metadata, namespace: kustomization.namespace } },
    ),
  );
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function portExists(container: Container, port: string | number): boolean {
  return container.ports.some((p) => p.name === port || p.containerPort === port);
}

function checkKubernetes(objects: KubeObject[], secretTemplate: KubeObject[]): void {
  const named = (kind: string, name: string) =>
    objects.find((o) => o.kind === kind && o.metadata?.name === name);
  const counts = new Map<string, number>();
  for (const object of objects) {
    if (
      !check(
        z.object({ apiVersion: z.string(), kind: z.string(), metadata: z.object({ name: z.string() }) }),
        object,
        "object",
      )
    )
      continue;
    counts.set(object.kind, (counts.get(object.kind) ?? 0) + 1);
    if (object.kind !== "Namespace")
      expect(
        object.metadata.namespace === NAMESPACE,
        `${object.kind}/${object.metadata.name}: namespace is not ${NAMESPACE}`,
      );
  }
  expect(Boolean(named("Namespace", NAMESPACE)), `missing Namespace/${NAMESPACE}`);

  // The example AGENT_CONFIG parses and has the sections the services read.
  const configMap = named("ConfigMap", "agent-runtime-config") as
    | { data?: Record<string, string> }
    | undefined;
  const envMap = named("ConfigMap", "agent-runtime-env") as { data?: Record<string, string> } | undefined;
  if (!configMap?.data?.["config.yaml"]) problems.push("ConfigMap/agent-runtime-config lacks config.yaml");
  else
    check(
      AgentConfigShape,
      parse(configMap.data["config.yaml"]),
      "ConfigMap/agent-runtime-config config.yaml",
    );
  for (const variable of ["NATS_URL", "DATABASE_URL", "REDIS_URL", "AGENT_CONFIG"])
    expect(Boolean(envMap?.data?.[variable]), `ConfigMap/agent-runtime-env lacks ${variable}`);
  expect(
    envMap?.data?.AGENT_CONFIG === `${CONFIG_MOUNT}/config.yaml`,
    `ConfigMap/agent-runtime-env: AGENT_CONFIG must be ${CONFIG_MOUNT}/config.yaml`,
  );

  const secret = check(SecretTemplate, secretTemplate[0], "Secret template");
  expect(
    !named("Secret", "agent-runtime-secrets"),
    "the Secret template must not be part of the kustomization",
  );

  for (const service of SERVICES) {
    const label = `Deployment/${service}`;
    const raw = named("Deployment", service);
    if (!raw) {
      problems.push(`missing ${label}`);
      continue;
    }
    const deployment = check(Deployment, raw, label);
    if (!deployment) continue;
    const template = deployment.spec.template;
    const container = template.spec.containers[0] as Container;
    const { variable, port } = PORTS[service]!;
    const env = Object.fromEntries(container.env.map((entry) => [entry.name, entry.value]));
    expect(
      matches(deployment.spec.selector.matchLabels, template.metadata.labels),
      `${label}: selector does not match the pod labels`,
    );
    expect(env.SERVICE === service, `${label}: env SERVICE must be ${service}`);
    expect(
      JSON.stringify([...(container.command ?? []), ...(container.args ?? [])]) ===
        JSON.stringify(compiledEntry(service)),
      `${label}: must run ${compiledEntry(service).join(" ")} (command/args)`,
    );
    expect(env[variable] === String(port), `${label}: env ${variable} must be ${port}`);
    expect(
      container.ports.some((p) => p.containerPort === port),
      `${label}: no containerPort ${port}`,
    );
    const metricsPort = PORTS[service]?.metrics;
    if (metricsPort) {
      expect(
        env[metricsPort.variable] === String(metricsPort.port),
        `${label}: env ${metricsPort.variable} must be ${metricsPort.port}`,
      );
      expect(
        container.ports.some((p) => p.containerPort === metricsPort.port),
        `${label}: no containerPort ${metricsPort.port} (metrics)`,
      );
    }
    expect(container.livenessProbe.httpGet.path === "/healthz", `${label}: liveness probe must GET /healthz`);
    expect(container.readinessProbe.httpGet.path === "/readyz", `${label}: readiness probe must GET /readyz`);
    for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe])
      if (probe)
        expect(
          portExists(container, probe.httpGet.port),
          `${label}: probe port ${probe.httpGet.port} is not a container port`,
        );
    const annotations = template.metadata.annotations;
    expect(annotations["prometheus.io/scrape"] === "true", `${label}: prometheus.io/scrape must be "true"`);
    const scrapePort = metricsPort?.port ?? port;
    expect(
      annotations["prometheus.io/port"] === String(scrapePort),
      `${label}: prometheus.io/port must be ${scrapePort}`,
    );
    expect(annotations["prometheus.io/path"] === "/metrics", `${label}: prometheus.io/path must be /metrics`);
    // the pod gets preStop + the drain grace + a margin before SIGKILL, and no more than it needs
    const drainGraceSeconds = Number(envMap?.data?.DRAIN_GRACE_MS ?? Number.NaN) / 1000;
    const neededGrace = PRE_STOP_SECONDS + drainGraceSeconds + GRACE_MARGIN_SECONDS;
    expect(
      Number.isFinite(drainGraceSeconds) && template.spec.terminationGracePeriodSeconds === neededGrace,
      `${label}: terminationGracePeriodSeconds must be preStop ${PRE_STOP_SECONDS} s + DRAIN_GRACE_MS + ${GRACE_MARGIN_SECONDS} s = ${neededGrace}`,
    );
    expect(
      JSON.stringify(container.lifecycle.preStop) ===
        JSON.stringify({ exec: { command: ["sleep", String(PRE_STOP_SECONDS)] } }),
      `${label}: preStop must sleep ${PRE_STOP_SECONDS} s`,
    );
    // pinned image: a tag that is not "latest", or a digest
    expect(
      /@sha256:[0-9a-f]{64}$/.test(container.image) ||
        (/:[\w][\w.-]{0,127}$/.test(container.image) && !container.image.endsWith(":latest")),
      `${label}: image ${container.image} must be pinned (a version tag or a digest, never latest)`,
    );
    const spread = (raw as { spec?: { template?: { spec?: { topologySpreadConstraints?: unknown[] } } } })
      .spec?.template?.spec?.topologySpreadConstraints;
    expect(Array.isArray(spread) && spread.length > 0, `${label}: needs topologySpreadConstraints`);
    for (const reference of container.envFrom) {
      if (reference.configMapRef)
        expect(
          Boolean(named("ConfigMap", reference.configMapRef.name)),
          `${label}: ConfigMap ${reference.configMapRef.name} is not defined`,
        );
      if (reference.secretRef)
        expect(
          reference.secretRef.optional === true || secret?.metadata.name === reference.secretRef.name,
          `${label}: Secret ${reference.secretRef.name} is neither optional nor the template's`,
        );
    }
    const configVolume = template.spec.volumes.find(
      (volume) => volume.configMap?.name === "agent-runtime-config",
    );
    expect(
      Boolean(
        configVolume &&
          container.volumeMounts.some((m) => m.name === configVolume.name && m.mountPath === CONFIG_MOUNT),
      ),
      `${label}: agent-runtime-config is not mounted at ${CONFIG_MOUNT}`,
    );

    const kubeService = check(Service, named("Service", service), `Service/${service}`);
    if (kubeService) {
      expect(
        matches(kubeService.spec.selector, template.metadata.labels),
        `Service/${service}: selector does not match the pods`,
      );
      for (const servicePort of kubeService.spec.ports)
        expect(
          portExists(container, servicePort.targetPort),
          `Service/${service}: targetPort ${servicePort.targetPort} is not a container port`,
        );
      if (service === "ingress") {
        expect(
          kubeService.spec.ports.some((p) => p.port === 80),
          "Service/ingress must listen on port 80",
        );
        // the public Service never reaches the metrics port (Prometheus scrapes the pods)
        expect(
          kubeService.spec.ports.every(
            (p) =>
              p.targetPort !== metricsPort?.port && p.targetPort !== "ops" && p.port !== metricsPort?.port,
          ),
          "Service/ingress must not expose the metrics port",
        );
      } else
        expect(
          kubeService.spec.ports.some((p) => p.port === port),
          `Service/${service} must expose ${port}`,
        );
    }

    if (QUEUE_SCALED.has(service)) {
      expect(
        !named("HorizontalPodAutoscaler", service),
        `HorizontalPodAutoscaler/${service}: ${service} is scaled by its KEDA ScaledObject; two autoscalers would fight`,
      );
      const scaled = check(ScaledObject, named("ScaledObject", service), `ScaledObject/${service}`);
      if (scaled) {
        expect(
          scaled.spec.scaleTargetRef.name === service,
          `ScaledObject/${service}: targets ${scaled.spec.scaleTargetRef.name}`,
        );
        expect(
          scaled.spec.triggers.some((trigger) => trigger.type === "nats-jetstream"),
          `ScaledObject/${service}: no nats-jetstream (consumer lag) trigger`,
        );
        for (const trigger of scaled.spec.triggers.filter((t) => t.type === "nats-jetstream"))
          for (const key of ["natsServerMonitoringEndpoint", "stream", "consumer", "lagThreshold"])
            expect(
              Boolean(trigger.metadata[key]),
              `ScaledObject/${service}: a nats-jetstream trigger lacks ${key}`,
            );
        if (HIGHLY_AVAILABLE.has(service) && !devOverlay)
          expect(scaled.spec.minReplicaCount >= 2, `ScaledObject/${service}: minReplicaCount must be >= 2`);
      }
    }
    const hpa = QUEUE_SCALED.has(service)
      ? undefined
      : check(Hpa, named("HorizontalPodAutoscaler", service), `HorizontalPodAutoscaler/${service}`);
    if (hpa) {
      expect(
        hpa.spec.scaleTargetRef.name === service,
        `HorizontalPodAutoscaler/${service}: targets ${hpa.spec.scaleTargetRef.name}`,
      );
      expect(
        hpa.spec.maxReplicas >= hpa.spec.minReplicas,
        `HorizontalPodAutoscaler/${service}: maxReplicas < minReplicas`,
      );
      expect(
        hpa.spec.metrics.some((metric) => metric.type === "Resource" && metric.resource?.name === "cpu"),
        `HorizontalPodAutoscaler/${service}: no CPU metric`,
      );
      if (HIGHLY_AVAILABLE.has(service) && !devOverlay)
        expect(hpa.spec.minReplicas >= 2, `HorizontalPodAutoscaler/${service}: minReplicas must be >= 2`);
    }
    // every service has a PodDisruptionBudget
    const pdb = check(Pdb, named("PodDisruptionBudget", service), `PodDisruptionBudget/${service}`);
    if (pdb)
      expect(
        matches(pdb.spec.selector.matchLabels, template.metadata.labels),
        `PodDisruptionBudget/${service}: selector does not match the pods`,
      );
    // Prometheus Operator: some Service selected by the ServiceMonitor reaches this pod's ops port
    const monitor = named("ServiceMonitor", "agent-runtime") as
      | {
          spec?: {
            selector?: { matchLabels?: Record<string, string> };
            endpoints?: Array<{ port?: string }>;
          };
        }
      | undefined;
    const monitorLabels = monitor?.spec?.selector?.matchLabels ?? {};
    const monitored = objects.filter(
      (object) =>
        object.kind === "Service" &&
        matches(monitorLabels, (object.metadata as { labels?: Record<string, string> }).labels ?? {}) &&
        matches(
          ((object as { spec?: { selector?: Record<string, string> } }).spec?.selector ?? {}) as Record<
            string,
            string
          >,
          template.metadata.labels,
        ) &&
        ((object as { spec?: { ports?: Array<{ name?: string }> } }).spec?.ports ?? []).some(
          (p) => p.name === "ops",
        ),
    );
    expect(
      Boolean(monitor) && Object.keys(monitorLabels).length > 0 && monitored.length > 0,
      `ServiceMonitor/agent-runtime does not reach ${service}'s ops port through a Service`,
    );
  }
  const policies = objects.filter((object) => object.kind === "NetworkPolicy") as Array<
    KubeObject & {
      spec: {
        podSelector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
        policyTypes?: string[];
        ingress?: Array<{ from?: unknown[] }>;
      };
    }
  >;
  expect(
    policies.some(
      (policy) =>
        Object.keys(policy.spec.podSelector.matchLabels ?? {}).length === 0 &&
        !policy.spec.podSelector.matchExpressions &&
        (policy.spec.policyTypes ?? []).includes("Ingress") &&
        (policy.spec.policyTypes ?? []).includes("Egress") &&
        !policy.spec.ingress,
    ),
    "NetworkPolicy: none denies all traffic by default",
  );
  // only ingress takes traffic from anywhere (a rule with no `from`)
  for (const policy of policies)
    for (const rule of policy.spec.ingress ?? [])
      if (!rule.from)
        expect(
          policy.spec.podSelector.matchLabels?.["app.kubernetes.io/name"] === "ingress",
          `NetworkPolicy/${policy.metadata.name}: opens pods other than ingress to any source`,
        );
  report.push(
    `kubernetes: ${objects.length} objects (${[...counts].map(([kind, count]) => `${count} ${kind}`).join(", ")})` +
      " — namespaces, compiled entries, pinned images, probes /healthz + /readyz, ports, Services, HPAs and KEDA ScaledObjects, PDBs for all, topology spread, grace = preStop + drain, ServiceMonitor, NetworkPolicies, config mount, example AGENT_CONFIG",
  );
  report.push(
    `secret template: ${secret ? `Secret/${secret.metadata.name} with ${Object.keys(secret.stringData).join(", ")}` : "invalid"}`,
  );
}

function checkCompose(path: string): void {
  const compose = check(Compose, parse(readFileSync(path, "utf8"), { merge: true }), path);
  if (!compose) return;
  for (const name of ["nats", "postgres", "redis"]) {
    const service = compose.services[name];
    expect(Boolean(service?.healthcheck), `${path}: ${name} needs a healthcheck`);
  }
  expect(String(compose.services.nats?.command ?? "").includes("-js"), `${path}: nats must run with -js`);
  expect(
    Boolean(compose.services.postgres?.image?.startsWith("pgvector/pgvector")),
    `${path}: postgres must use a pgvector image`,
  );
  // One image for the five services, built once: one of them has `build:`, all run its tag.
  const builders = SERVICES.filter((name) => compose.services[name]?.build !== undefined);
  const image = builders.length === 1 ? compose.services[builders[0]!]?.image : undefined;
  expect(
    builders.length === 1 && Boolean(image),
    `${path}: exactly one service must build the image, with an image name (found ${builders.length})`,
  );
  for (const name of SERVICES) {
    const service = compose.services[name];
    if (!service) {
      problems.push(`${path}: missing service ${name}`);
      continue;
    }
    if (image) expect(service.image === image, `${path}: ${name} must run the built image ${image}`);
    expect(
      !JSON.stringify(service.command ?? "").includes("tsx"),
      `${path}: ${name} must run compiled JavaScript, not tsx`,
    );
    const env = service.environment ?? {};
    for (const variable of ["NATS_URL", "DATABASE_URL", "REDIS_URL"])
      expect(typeof env[variable] === "string" && env[variable] !== "", `${path}: ${name} lacks ${variable}`);
    expect(env.SERVICE === name, `${path}: ${name} must set SERVICE=${name}`);
    const { variable, port, metrics } = PORTS[name]!;
    expect(env[variable] === String(port), `${path}: ${name} must set ${variable}=${port}`);
    if (metrics) {
      expect(
        env[metrics.variable] === String(metrics.port),
        `${path}: ${name} must set ${metrics.variable}=${metrics.port}`,
      );
      expect(
        !(service.ports ?? []).some((p) => String(p).endsWith(`:${metrics.port}`)),
        `${path}: ${name} must not publish its metrics port ${metrics.port}`,
      );
    }
    for (const dependency of ["nats", "postgres", "redis"])
      expect(
        service.depends_on?.[dependency]?.condition === "service_healthy",
        `${path}: ${name} must depend on ${dependency} being healthy`,
      );
    // An empty value is not "unset": the services' zod schemas would reject it.
    for (const [key, value] of Object.entries(env))
      expect(
        value !== "" && !/^\$\{\w+:?-\}$/.test(value ?? ""),
        `${path}: ${name} may set ${key} to an empty string (leave the value out to pass the host's through)`,
      );
  }
  expect(
    Boolean(compose.services.ingress?.ports?.some((p) => String(p).endsWith(":8080"))),
    `${path}: ingress must publish 8080`,
  );
  checkObservability(compose, path);
  report.push(
    `docker-compose.yml: ${Object.keys(compose.services).length} services (${Object.keys(compose.services).join(", ")}) — one image built once, env, healthchecks, depends_on`,
  );
}

/** Host path → container path of a service's bind mounts (relative host paths from the compose file's directory). */
function mounts(
  service: z.infer<typeof ComposeService> | undefined,
  composePath: string,
): Map<string, string> {
  const found = new Map<string, string>();
  for (const volume of service?.volumes ?? []) {
    const [host, container] = volume.split(":");
    if (host?.startsWith(".") && container) found.set(container, join(dirname(composePath), host));
  }
  return found;
}

/**
 * The `observability` profile: Prometheus scrapes every service's metrics port and loads the alert
 * rules, Grafana gets Prometheus as its default data source and the dashboard JSON, each file a
 * mount names existing and saying what the other side expects.
 */
function checkObservability(compose: z.infer<typeof Compose>, path: string): void {
  const prometheus = compose.services.prometheus;
  const grafana = compose.services.grafana;
  if (!prometheus || !grafana) {
    problems.push(`${path}: the observability profile needs prometheus and grafana services`);
    return;
  }
  for (const [name, service] of [
    ["prometheus", prometheus],
    ["grafana", grafana],
  ] as const)
    expect(
      service.profiles?.includes("observability") === true,
      `${path}: ${name} must be in the observability profile (a plain \`up\` starts the runtime alone)`,
    );
  const configFlag = [prometheus.command ?? []].flat().find((arg) => arg.startsWith("--config.file="));
  const promMounts = mounts(prometheus, path);
  const configHost = configFlag ? promMounts.get(configFlag.slice("--config.file=".length)) : undefined;
  if (!configHost || !existsSync(configHost)) {
    problems.push(`${path}: prometheus's --config.file must be a mounted file of the repository`);
    return;
  }
  const config = check(PrometheusConfig, parse(readFileSync(configHost, "utf8")), configHost);
  if (!config) return;
  const targets = new Set(
    config.scrape_configs.flatMap((job) => job.static_configs.flatMap((entry) => entry.targets)),
  );
  for (const name of SERVICES) {
    const env = compose.services[name]?.environment ?? {};
    const { variable, port, metrics } = PORTS[name]!;
    const metricsPort = metrics ? env[metrics.variable] : env[variable];
    expect(
      targets.has(`${name}:${metricsPort ?? metrics?.port ?? port}`),
      `${configHost}: no scrape target ${name}:${metricsPort} (its metrics port in ${path})`,
    );
  }
  for (const job of config.scrape_configs)
    expect(
      (job.metrics_path ?? "/metrics") === "/metrics",
      `${configHost}: ${job.job_name} must scrape /metrics`,
    );
  for (const pattern of config.rule_files) {
    const directory = dirname(pattern);
    const host = promMounts.get(directory);
    const rules = host && existsSync(host) ? readdirSync(host).filter((file) => /\.ya?ml$/.test(file)) : [];
    expect(rules.length > 0, `${configHost}: rule_files ${pattern} matches no mounted rule file`);
    for (const file of rules)
      check(
        z.object({
          groups: z.array(z.object({ name: z.string(), rules: z.array(z.object({}).passthrough()).min(1) })),
        }),
        parse(readFileSync(join(host!, file), "utf8")),
        join(host!, file),
      );
  }
  const grafanaMounts = mounts(grafana, path);
  const provisioning = grafanaMounts.get("/etc/grafana/provisioning");
  if (!provisioning || !existsSync(provisioning)) {
    problems.push(`${path}: grafana must mount its provisioning directory at /etc/grafana/provisioning`);
    return;
  }
  const promPort = (prometheus.ports ?? []).map((p) => String(p).split(":").at(-1)).find(Boolean) ?? "9090";
  for (const file of readdirSync(join(provisioning, "datasources"))) {
    const sources = check(
      GrafanaDatasources,
      parse(readFileSync(join(provisioning, "datasources", file), "utf8")),
      file,
    );
    expect(
      sources?.datasources.some(
        (source) =>
          source.type === "prometheus" && source.url === `http://prometheus:${promPort}` && source.isDefault,
      ) === true,
      `${provisioning}/datasources/${file}: the default data source must be the compose Prometheus (http://prometheus:${promPort})`,
    );
  }
  for (const file of readdirSync(join(provisioning, "dashboards"))) {
    const providers = check(
      GrafanaDashboards,
      parse(readFileSync(join(provisioning, "dashboards", file), "utf8")),
      file,
    );
    for (const provider of providers?.providers ?? []) {
      const host = grafanaMounts.get(provider.options.path);
      const dashboards =
        host && existsSync(host) ? readdirSync(host).filter((name) => name.endsWith(".json")) : [];
      expect(
        dashboards.length > 0,
        `${provisioning}/dashboards/${file}: ${provider.options.path} holds no mounted dashboard JSON`,
      );
    }
  }
  report.push(
    `observability profile: prometheus scrapes ${targets.size} targets and loads ${config.rule_files.join(", ")}; grafana provisions its data source and dashboards`,
  );
}

const { values } = parseArgs({
  options: {
    built: { type: "string" },
    kustomization: { type: "string" },
    secret: { type: "string" },
    compose: { type: "string" },
    overlay: { type: "string" },
  },
});
const devOverlay = values.overlay === "dev";
if (devOverlay) NAMESPACE = "agent-runtime-dev";
if ((!values.built && !values.kustomization) || !values.secret || !values.compose) {
  console.error(
    "usage: check-manifests.ts --built <file> | --kustomization <dir>  --secret <file> --compose <file>",
  );
  process.exit(2);
}
const objects = values.built ? readDocuments(values.built) : buildKustomization(values.kustomization!);
checkKubernetes(objects, readDocuments(values.secret));
checkCompose(values.compose);
if (problems.length > 0) {
  console.error(`${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
for (const line of report) console.log(`ok  ${line}`);
