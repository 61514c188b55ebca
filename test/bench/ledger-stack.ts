/**
 * The servers and service processes of the ledger benchmark: a nats-server
 * and a redis-server of its own (so their counters hold only this stack's
 * traffic), a Postgres database of its own (so pg_stat_database holds only
 * this stack's transactions), and the five services as processes, compiled
 * JavaScript when a fresh build exists and TypeScript through tsx otherwise.
 *
 * `LEDGER_SERVICES_ROOT` runs the services of another checkout of this
 * repository (with its dependencies installed), e.g. a worktree of an earlier
 * commit, to measure a "before".
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";
import { DATABASE_URL } from "../support/isolation.js";
import { freePort } from "../support/processes.js";

const root = resolve(
  process.env.LEDGER_SERVICES_ROOT ?? join(dirname(fileURLToPath(import.meta.url)), "..", ".."),
);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const READY_TIMEOUT_MS = 120_000;

export const SERVICE_NAMES = ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** A child process whose output is kept (the tail) for error messages. */
interface Child {
  pid: number;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function startChild(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }) {
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd ?? root,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-100_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", (error) => {
    output += `\n${error.message}`;
  });
  return {
    child,
    pid: child.pid ?? 0,
    output: () => output,
    stop: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const killLater = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killLater);
    },
  };
}

async function waitFor(what: string, ready: () => Promise<boolean>, child: ReturnType<typeof startChild>) {
  // generous: on a loaded machine a service compiled on the fly (tsx) takes a while to start
  const until = Date.now() + READY_TIMEOUT_MS;
  while (!(await ready().catch(() => false))) {
    if (child.child.exitCode !== null) throw new Error(`${what} exited during start-up:\n${child.output()}`);
    if (Date.now() > until) {
      await child.stop("SIGKILL");
      throw new Error(
        `${what} did not get ready in ${READY_TIMEOUT_MS / 1000} s:\n${child.output().slice(-3000)}`,
      );
    }
    await sleep(50);
  }
}

export interface NatsServer extends Child {
  url: string;
  monitorUrl: string;
}

/** A JetStream nats-server on free client and monitoring ports with a temporary store. */
export async function startNatsServer(): Promise<NatsServer> {
  const [port, monitorPort] = [await freePort(), await freePort()];
  const storeDir = mkdtempSync(join(tmpdir(), "ledger-nats-"));
  const binary = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
  const args = ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-js", "-sd", storeDir];
  const server = startChild(binary, args, {});
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  await waitFor("nats-server", async () => (await fetch(`${monitorUrl}/healthz`)).ok, server);
  return {
    url: `nats://127.0.0.1:${port}`,
    monitorUrl,
    pid: server.pid,
    output: server.output,
    stop: async () => {
      await server.stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

export interface RedisServer extends Child {
  url: string;
}

/** A redis-server on a free port, without persistence. */
export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const server = startChild("redis-server", args, { cwd: tmpdir() });
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(
    "redis-server",
    async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on("error", () => undefined); // refused until the server listens
      try {
        await client.connect();
        return (await client.ping()) === "PONG";
      } finally {
        client.disconnect();
      }
    },
    server,
  );
  return { url, pid: server.pid, output: server.output, stop: () => server.stop() };
}

export interface Database {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A database of its own on the shared Postgres server (created from DATABASE_URL's server). */
export async function createDatabase(): Promise<Database> {
  const name = `ledger_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Where the services' code comes from: the checkout, its commit and its uncommitted changes to services and packages. */
export function servicesSource(): { root: string; commit: string; modifiedFiles: string[] } {
  const git = (...args: string[]) => execFileSync("git", ["-C", root, ...args], { encoding: "utf8" }).trim();
  try {
    const modified = git("status", "--porcelain", "--", "services", "packages");
    return {
      root,
      commit: git("log", "-1", "--format=%h %s"),
      modifiedFiles: modified ? modified.split("\n").map((line) => line.trim()) : [],
    };
  } catch {
    return { root, commit: "not a git checkout", modifiedFiles: [] };
  }
}

/** How the services are run: compiled JavaScript, or TypeScript through tsx. */
export interface Runtime {
  kind: "compiled" | "tsx";
  reason: string;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".test.ts")) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function workspaceDependencies(packageDir: string, seen = new Set<string>()): Set<string> {
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    if (!name.startsWith("@agent-runtime/")) continue;
    const dir = join(root, "packages", name.slice("@agent-runtime/".length));
    if (seen.has(dir) || !existsSync(dir)) continue;
    seen.add(dir);
    workspaceDependencies(dir, seen);
  }
  return seen;
}

/** Why `built` is not a fresh build of the sources in `dir`, or undefined when it is. */
function staleness(dir: string, built: string): string | undefined {
  const path = join(dir, built);
  if (!existsSync(path)) return `${path.slice(root.length + 1)} does not exist`;
  if (statSync(path).mtimeMs < newestSource(join(dir, "src")))
    return `${path.slice(root.length + 1)} is older than its sources`;
  return undefined;
}

/**
 * Compiled JavaScript when every service has a `dist/main.js` newer than its
 * sources and every workspace package it imports has a `dist/index.js` newer
 * than its own; tsx otherwise. `LEDGER_RUNTIME=tsx|compiled` forces one.
 */
export function chooseRuntime(): Runtime {
  const forced = process.env.LEDGER_RUNTIME;
  if (forced === "tsx" || forced === "compiled") return { kind: forced, reason: "LEDGER_RUNTIME" };
  const packages = new Set<string>();
  for (const name of SERVICE_NAMES) {
    const dir = join(root, "services", name);
    const stale = staleness(dir, "dist/main.js");
    if (stale) return { kind: "tsx", reason: stale };
    for (const dependency of workspaceDependencies(dir)) packages.add(dependency);
  }
  for (const dir of packages) {
    const stale = staleness(dir, "dist/index.js");
    if (stale) return { kind: "tsx", reason: stale };
  }
  return {
    kind: "compiled",
    reason: "every services/*/dist/main.js and package dist is newer than its sources",
  };
}

export interface ServiceProcess extends Child {
  name: ServiceName;
}

/** Starts one service as a process and waits for its "<name> ready" log line. */
export async function startService(
  name: ServiceName,
  env: NodeJS.ProcessEnv,
  runtime: Runtime,
): Promise<ServiceProcess> {
  // LEDGER_NODE_ARGS: extra node flags for every service (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
  const nodeArgs = (process.env.LEDGER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const args = [
    ...nodeArgs,
    ...(runtime.kind === "compiled"
      ? ["dist/main.js"]
      : ["--conditions=source", "--import", "tsx", "src/main.ts"]),
  ];
  const child = startChild(process.execPath, args, {
    cwd: join(root, "services", name),
    env: { ...process.env, ...env },
  });
  await waitFor(name, async () => child.output().includes(`${name} ready`), child);
  return { name, pid: child.pid, output: child.output, stop: child.stop };
}
