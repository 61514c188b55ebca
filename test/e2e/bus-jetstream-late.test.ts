/**
 * A bus connected before JetStream answers (the server started without it, or not yet ready)
 * reaches JetStream once it does, without a restart of the service: a failed attempt to reach
 * JetStream is not kept.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bus, connectBus } from "@agent-runtime/bus";
import { createLogger } from "@agent-runtime/telemetry";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../support/processes.js";

const command = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
const storeDir = mkdtempSync(join(tmpdir(), "late-js-"));
let server: ChildProcess | undefined;
let bus: Bus | undefined;

async function startNats(port: number, monitorPort: number, jetstream: boolean): Promise<void> {
  const args = ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort)];
  server = spawn(command, jetstream ? [...args, "-js", "-sd", storeDir] : args, { stdio: "ignore" });
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const ok = await fetch(`http://127.0.0.1:${monitorPort}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("nats-server did not start");
}

async function stopNats(): Promise<void> {
  const running = server;
  if (!running || running.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    running.once("exit", () => resolve());
    running.kill("SIGTERM");
  });
}

afterAll(async () => {
  await bus?.drain().catch(() => undefined);
  await stopNats();
  rmSync(storeDir, { recursive: true, force: true });
});

describe("bus", () => {
  it("reaches JetStream once it answers, after a first attempt that found none", async () => {
    const [port, monitorPort] = [await freePort(), await freePort()];
    await startNats(port, monitorPort, false);
    bus = await connectBus({
      name: "late-jetstream",
      url: `nats://127.0.0.1:${port}`,
      logger: createLogger({ service: "late-jetstream", level: "silent" }),
    });
    await expect(bus.jsm()).rejects.toThrow();
    await stopNats();
    await startNats(port, monitorPort, true);
    // the connection comes back by itself; JetStream is asked again rather than the old failure
    const until = Date.now() + 15_000;
    let info: { streams: number } | undefined;
    while (!info && Date.now() < until) {
      info = await bus
        .jsm()
        .then((jsm) => jsm.getAccountInfo())
        .catch(() => undefined);
      if (!info) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(info?.streams).toBe(0);
  });
});
