/**
 * Replicas of the services as processes, each writing its whole output to a log file of its own
 * (a killed replica's log is kept for the report), that a fault test can SIGKILL and start again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const checkout = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const SERVICES = ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"] as const;
export type ServiceName = (typeof SERVICES)[number];

/** One replica slot: the process in it changes with every restart; its environment does not. */
export interface Replica {
  /** e.g. `orchestrator-1` */
  id: string;
  service: ServiceName;
  env: NodeJS.ProcessEnv;
  /** The running process, when one is up and ready. */
  child: ChildProcess | undefined;
  pid: number | undefined;
  /** How many processes this slot has started (1 at first). */
  generation: number;
  /** Log file of each generation, oldest first. */
  logFiles: string[];
  /** Whether the replica is up and ready (set false before a kill). */
  up: boolean;
}

export interface ReplicaPoolOptions {
  /** Environment of every replica (connections, config). */
  env: NodeJS.ProcessEnv;
  /** Extra environment per replica (e.g. a PORT of its own for each ingress). */
  envOf?: (service: ServiceName, index: number) => NodeJS.ProcessEnv;
  replicas: number;
  logDir: string;
  readyTimeoutMs?: number;
  /** The checkout whose services run (with its dependencies installed); this one by default. */
  root?: string;
  /** tsx by default. */
  runtime?: Runtime;
}

export interface ReplicaPool {
  replicas: Replica[];
  /** Every process that ended, in order. */
  exits: ReplicaExit[];
  of(service: ServiceName): Replica[];
  /** SIGKILLs the replica's process and waits for it to exit; it stays down until `restart`. */
  kill(replica: Replica): Promise<void>;
  /** Starts the replica's process again (retrying while the servers it needs are away). */
  restart(replica: Replica): Promise<void>;
  /** Stops every replica (SIGTERM, then SIGKILL after 10 s). */
  stopAll(): Promise<void>;
}

/** How a replica runs: compiled JavaScript (`dist/main.js`, as production) or TypeScript through tsx. */
export type Runtime = "compiled" | "tsx";

function newestSource(dir: string): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".test.ts")) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Compiled when every service's `dist/main.js` and every package's `dist/index.js` under `root` is
 * newer than its sources (e.g. right after `pnpm build`), tsx otherwise; with the reason.
 */
export function freshRuntime(root: string = checkout): { runtime: Runtime; reason: string } {
  const dirs = [
    ...SERVICES.map((name) => ({ dir: join(root, "services", name), built: "dist/main.js" })),
    ...readdirSync(join(root, "packages")).map((name) => ({
      dir: join(root, "packages", name),
      built: "dist/index.js",
    })),
  ];
  for (const { dir, built } of dirs) {
    const path = join(dir, built);
    if (!existsSync(path)) return { runtime: "tsx", reason: `${path} does not exist` };
    if (statSync(path).mtimeMs < newestSource(join(dir, "src")))
      return { runtime: "tsx", reason: `${path} is older than its sources` };
  }
  return { runtime: "compiled", reason: "every service and package has a build newer than its sources" };
}

/** A replica process that ended (killed by the test or not). */
export interface ReplicaExit {
  id: string;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  /** Whether it was ready (serving) when it ended. */
  wasUp: boolean;
}

async function launch(
  replica: Replica,
  options: { logDir: string; readyTimeoutMs: number; root: string; runtime: Runtime },
  exits: ReplicaExit[],
): Promise<void> {
  const { logDir, readyTimeoutMs, root } = options;
  const args =
    options.runtime === "compiled"
      ? ["dist/main.js"]
      : ["--conditions=source", "--import", "tsx", "src/main.ts"];
  replica.generation += 1;
  const logFile = join(logDir, `${replica.id}.${replica.generation}.log`);
  replica.logFiles.push(logFile);
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, args, {
    cwd: join(root, "services", replica.service),
    env: { ...process.env, ...replica.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let ready = false;
  let head = "";
  const scan = (chunk: Buffer) => {
    log.write(chunk);
    if (ready) return;
    head = (head + chunk.toString()).slice(-20_000);
    if (head.includes(`${replica.service} ready`)) ready = true;
  };
  child.stdout?.on("data", scan);
  child.stderr?.on("data", scan);
  child.once("exit", (code, signal) => {
    log.end(`\n[replicas] process exited code=${code} signal=${signal} at ${new Date().toISOString()}\n`);
    exits.push({
      id: replica.id,
      pid: child.pid,
      code,
      signal,
      at: Date.now(),
      wasUp: replica.child === child,
    });
    if (replica.child === child) {
      replica.up = false;
      replica.child = undefined;
    }
  });
  const until = Date.now() + readyTimeoutMs;
  while (!ready) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${replica.id} exited during start-up (see ${logFile}):\n${head.slice(-2000)}`);
    if (Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`${replica.id} did not get ready in ${readyTimeoutMs} ms (see ${logFile})`);
    }
    await sleep(50);
  }
  replica.child = child;
  replica.pid = child.pid;
  replica.up = true;
}

/** Starts `replicas` processes of each service (services in dependency order, replicas side by side). */
export async function startReplicaPool(options: ReplicaPoolOptions): Promise<ReplicaPool> {
  mkdirSync(options.logDir, { recursive: true });
  const launchOptions = {
    logDir: options.logDir,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    root: options.root ?? checkout,
    runtime: options.runtime ?? "tsx",
  };
  const replicas: Replica[] = [];
  const exits: ReplicaExit[] = [];
  for (const service of SERVICES) {
    for (let index = 1; index <= options.replicas; index++) {
      replicas.push({
        id: `${service}-${index}`,
        service,
        env: { ...options.env, ...options.envOf?.(service, index) },
        child: undefined,
        pid: undefined,
        generation: 0,
        logFiles: [],
        up: false,
      });
    }
  }
  const stopAll = async () => {
    await Promise.all(
      replicas.map(async (replica) => {
        const child = replica.child;
        replica.up = false;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(force);
      }),
    );
  };
  try {
    for (const service of SERVICES) {
      await Promise.all(
        replicas
          .filter((replica) => replica.service === service)
          .map((replica) => launch(replica, launchOptions, exits)),
      );
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    replicas,
    exits,
    of: (service) => replicas.filter((replica) => replica.service === service),
    kill: async (replica) => {
      const child = replica.child;
      replica.up = false;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
    restart: async (replica) => {
      let lastError: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await launch(replica, launchOptions, exits);
          return;
        } catch (error) {
          lastError = error;
          await sleep(1000);
        }
      }
      throw lastError;
    },
    stopAll,
  };
}
