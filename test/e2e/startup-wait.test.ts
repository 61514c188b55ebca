/**
 * A service started before NATS and Postgres are up: ingress's own process says what it waits for,
 * waits, and becomes ready once they come up; with nothing coming up it gives up after
 * STARTUP_WAIT_SECONDS with one line and exit code 1, never a stack trace.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { type NatsServer, startPrivateNats } from "../support/servers.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const ingressDirectory = join(dirname(fileURLToPath(import.meta.url)), "../../services/ingress");
const isolation = newIsolation("startup");
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await dropIsolation(isolation);
});

function startIngressProcess(env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "src/main.ts"],
    {
      cwd: ingressDirectory,
      env: {
        ...process.env,
        ...isolatedEnv(isolation),
        PORT: "0",
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
  });
  const until = async (text: string | RegExp, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (!(typeof text === "string" ? stderr.includes(text) : text.test(stderr))) {
      if (child.exitCode !== null || Date.now() > end)
        throw new Error(`no ${String(text)} (exit ${child.exitCode}):\n${stderr.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return { child, exited, stderr: () => stderr, until };
}

/** A line of a stack trace (`    at fn (file:line:col)`). */
const STACK_LINE = /^\s+at .+:\d+/m;

describe("start-up before the servers", () => {
  it("waits for NATS and Postgres, saying so, and gets ready once both come up", async () => {
    const nats: NatsServer = await startPrivateNats("startup");
    cleanups.push(() => nats.close());
    await nats.stop();
    const postgres: TcpProxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 });
    cleanups.push(() => postgres.close());
    postgres.down();

    const ingress = startIngressProcess({
      NATS_URL: nats.url,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${postgres.port}/postgres`,
      STARTUP_WAIT_SECONDS: "120",
    });
    await ingress.until(`waiting for NATS at ${nats.url} (connection refused)`, 60_000);
    await ingress.until(
      /waiting for Postgres at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres \(connection closed/,
      10_000,
    );
    expect(ingress.stderr()).toContain("docker compose up -d nats postgres redis");
    // still waiting, not dead
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(ingress.child.exitCode).toBeNull();

    await nats.start();
    postgres.up();
    await ingress.until("ingress ready", 60_000);
    expect(ingress.stderr()).toMatch(
      new RegExp(`NATS at ${nats.url.replaceAll(".", "\\.")} answers \\(after`),
    );
    expect(ingress.stderr()).toMatch(/Postgres at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres answers/);
    expect(ingress.stderr()).toMatch(/API docs http:\/\/127\.0\.0\.1:\d+\/docs/);
    expect(ingress.stderr()).not.toMatch(STACK_LINE);
    ingress.child.kill("SIGTERM");
    expect(await ingress.exited).toBe(0);
  }, 150_000);

  it("gives up after STARTUP_WAIT_SECONDS with one line and exit code 1", async () => {
    const nats: NatsServer = await startPrivateNats("startup-gone");
    cleanups.push(() => nats.close());
    await nats.stop();
    const ingress = startIngressProcess({ NATS_URL: nats.url, STARTUP_WAIT_SECONDS: "2" });
    expect(await ingress.exited).toBe(1);
    const lines = ingress.stderr().trim().split("\n");
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^cannot reach NATS at ${nats.url.replaceAll(".", "\\.")} \\(waited \\d+ s: connection refused\\)\\. Start the servers with \`docker compose up -d nats postgres redis\`, or set NATS_URL\\.$`,
      ),
    );
    expect(ingress.stderr()).not.toMatch(STACK_LINE);
  }, 90_000);
});
