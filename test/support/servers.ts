/**
 * Private infrastructure servers a fault test can stop and start again: a JetStream nats-server
 * (its own client port, monitoring port and store directory, kept across restarts) and a
 * redis-server (its own port, no persistence). Restarting keeps the address, so the services
 * pointed at it reconnect on their own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./processes.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server process that can be stopped (any signal) and started again at the same address. */
export interface RestartableServer {
  url: string;
  /** Whether the process is running now. */
  running(): boolean;
  /** Stops the process (SIGKILL by default, as a crash) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again and waits until it answers. */
  start(): Promise<void>;
  /** Output of every run of the process, newest last (the tail). */
  output(): string;
  /** Stops it for good and removes its files. */
  close(): Promise<void>;
}

export interface Launch {
  what: string;
  command: string;
  args: string[];
  /** Working directory of the process (the system's temporary directory by default). */
  cwd?: string;
  ready: () => Promise<boolean>;
}

/** A server process that can be killed (as a crash) and started again with the same arguments. */
export function restartable(launch: Launch, url: string, cleanup: () => void): RestartableServer {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-100_000);
  };
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const stop = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (!running()) return;
    child?.kill(signal);
    const force = setTimeout(() => child?.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(force);
  };
  const start = async () => {
    if (running()) return;
    const started = spawn(launch.command, launch.args, {
      cwd: launch.cwd ?? tmpdir(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = started;
    started.stdout?.on("data", keep);
    started.stderr?.on("data", keep);
    started.once("error", (error) => keep(Buffer.from(`\n${error.message}\n`)));
    exited = new Promise((resolve) => started.once("exit", () => resolve()));
    const until = Date.now() + 30_000;
    while (!(await launch.ready().catch(() => false))) {
      if (started.exitCode !== null)
        throw new Error(`${launch.what} exited during start-up:\n${output.slice(-3000)}`);
      if (Date.now() > until) {
        await stop();
        throw new Error(`${launch.what} did not answer in 30 s:\n${output.slice(-3000)}`);
      }
      await sleep(50);
    }
  };
  return {
    url,
    running,
    stop,
    start,
    output: () => output,
    close: async () => {
      await stop("SIGTERM");
      cleanup();
    },
  };
}

export interface NatsServer extends RestartableServer {
  monitorUrl: string;
  storeDir: string;
}

/** A JetStream nats-server on free ports with a store directory of its own, started. */
export async function startPrivateNats(label = "chaos"): Promise<NatsServer> {
  const [port, monitorPort] = [await freePort(), await freePort()];
  const storeDir = mkdtempSync(join(tmpdir(), `${label}-nats-`));
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const command = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
  const server = restartable(
    {
      what: "nats-server",
      command,
      args: ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-js", "-sd", storeDir],
      ready: async () => (await fetch(`${monitorUrl}/healthz?js-enabled-only=true`)).ok,
    },
    `nats://127.0.0.1:${port}`,
    () => rmSync(storeDir, { recursive: true, force: true }),
  );
  await server.start();
  return { ...server, monitorUrl, storeDir };
}

/** A redis-server on a free port without persistence, started. */
export async function startPrivateRedis(): Promise<RestartableServer> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const server = restartable(
    {
      what: "redis-server",
      command: "redis-server",
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      ready: async () => {
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
    },
    url,
    () => undefined,
  );
  await server.start();
  return server;
}
