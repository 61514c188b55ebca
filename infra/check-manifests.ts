/**
 * Schema checks of the Kubernetes manifests and docker-compose.yml (no cluster
 * or docker engine needed). Usage: check-manifests.ts <built-manifests.yaml> <docker-compose.yml>
 */
import { readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { z } from "zod";

const SERVICES = ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"];
const Probe = z.object({
  httpGet: z.object({ path: z.string().startsWith("/"), port: z.union([z.string(), z.number()]) }),
});
const Container = z.object({
  name: z.string(),
  image: z.string().min(1),
  ports: z.array(z.object({ containerPort: z.number().int().positive() })).min(1),
  readinessProbe: Probe.refine(
    (probe) => probe.httpGet.path === "/readyz",
    "readiness probe must hit /readyz",
  ),
  livenessProbe: Probe.refine(
    (probe) => probe.httpGet.path === "/healthz",
    "liveness probe must hit /healthz",
  ),
  resources: z.object({ requests: z.object({ cpu: z.string(), memory: z.string() }) }),
  env: z.array(z.object({ name: z.string(), value: z.string().optional() })),
});
const Deployment = z.object({
  apiVersion: z.literal("apps/v1"),
  kind: z.literal("Deployment"),
  metadata: z.object({ name: z.string(), namespace: z.string() }),
  spec: z.object({
    replicas: z.number().int().positive(),
    selector: z.object({ matchLabels: z.record(z.string(), z.string()) }),
    template: z.object({
      metadata: z.object({ labels: z.record(z.string(), z.string()) }),
      spec: z.object({
        terminationGracePeriodSeconds: z.number().int().min(10),
        containers: z.array(Container).length(1),
      }),
    }),
  }),
});
const Service = z.object({
  apiVersion: z.literal("v1"),
  kind: z.literal("Service"),
  spec: z.object({
    selector: z.record(z.string(), z.string()),
    ports: z.array(z.object({ port: z.number(), targetPort: z.union([z.string(), z.number()]) })).min(1),
  }),
});
const Hpa = z.object({
  apiVersion: z.literal("autoscaling/v2"),
  kind: z.literal("HorizontalPodAutoscaler"),
  spec: z.object({
    scaleTargetRef: z.object({ kind: z.literal("Deployment"), name: z.string() }),
    minReplicas: z.number(),
    maxReplicas: z.number(),
  }),
});
const Known = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.object({ name: z.string() }),
});

const [manifestPath, composePath] = process.argv.slice(2);
if (!manifestPath || !composePath)
  throw new Error("usage: check-manifests.ts <manifests.yaml> <docker-compose.yml>");
const problems: string[] = [];
const objects = parseAllDocuments(readFileSync(manifestPath, "utf8"))
  .map((document) => document.toJSON() as unknown)
  .filter((object): object is Record<string, unknown> => Boolean(object));
const check = (schema: z.ZodType, object: unknown, label: string) => {
  const result = schema.safeParse(object);
  if (!result.success)
    problems.push(
      `${label}: ${result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
};
const byKind = new Map<string, Record<string, unknown>[]>();
for (const object of objects) {
  check(Known, object, "object");
  const kind = String(object.kind);
  byKind.set(kind, [...(byKind.get(kind) ?? []), object]);
  const label = `${kind}/${(object.metadata as { name?: string })?.name}`;
  if (kind === "Deployment") check(Deployment, object, label);
  if (kind === "Service") check(Service, object, label);
  if (kind === "HorizontalPodAutoscaler") check(Hpa, object, label);
}
for (const service of SERVICES) {
  for (const kind of ["Deployment", "Service", "HorizontalPodAutoscaler"]) {
    if (!byKind.get(kind)?.some((object) => (object.metadata as { name: string }).name === service))
      problems.push(`missing ${kind}/${service}`);
  }
}
const compose = parse(readFileSync(composePath, "utf8"), { merge: true }) as {
  services?: Record<string, { environment?: Record<string, string> }>;
};
for (const name of ["nats", "postgres", "redis", ...SERVICES]) {
  if (!compose.services?.[name]) problems.push(`docker-compose.yml: missing service ${name}`);
}
for (const name of SERVICES) {
  const env = compose.services?.[name]?.environment ?? {};
  for (const variable of ["NATS_URL", "DATABASE_URL", "REDIS_URL", "SERVICE"]) {
    if (!env[variable]) problems.push(`docker-compose.yml: ${name} lacks ${variable}`);
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(
  `kubernetes: ${objects.length} objects pass the schema checks; docker-compose.yml: ${Object.keys(compose.services ?? {}).length} services`,
);
