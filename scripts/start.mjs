#!/usr/bin/env node
/**
 * `pnpm start`: runs the five services from source (or the subset named in
 * SERVICES=ingress,memory), each in its own process with the inherited
 * environment. Every output line is prefixed with the service name
 * (`[memory] {...json...}`). SIGINT and SIGTERM are forwarded (as SIGTERM) so
 * each service drains; a service still running after 30 s is killed, and a
 * second signal kills at once. When a service exits on its own, the others
 * are stopped and this process exits non-zero.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Start order: dependencies of the request path first, the public door last. */
const ALL = ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"];
const FORCE_KILL_AFTER_MS = 30_000;

const requested = (process.env.SERVICES ?? "")
  .split(",")
  .map((name) => name.trim())
  .filter(Boolean);
const unknown = requested.filter((name) => !ALL.includes(name));
if (unknown.length > 0) {
  process.stderr.write(
    `[start] unknown service(s) in SERVICES: ${unknown.join(", ")} (known: ${ALL.join(", ")})\n`,
  );
  process.exit(2);
}
const selected = requested.length > 0 ? ALL.filter((name) => requested.includes(name)) : ALL;

/** @type {Map<string, import("node:child_process").ChildProcess>} */
const running = new Map();
let stopping = false;
let exitCode = 0;

function say(text) {
  process.stderr.write(`[start] ${text}\n`);
}

function pipeLines(name, input, output) {
  createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
    output.write(`[${name}] ${line}\n`);
  });
}

function finishIfDone() {
  if (running.size === 0) process.exit(exitCode);
}

function stopAll(reason) {
  if (stopping) return;
  stopping = true;
  say(`${reason}; stopping ${[...running.keys()].join(", ") || "nothing"}`);
  // Always SIGTERM, in reverse start order (the public door closes first). On
  // Ctrl-C the terminal has already sent SIGINT to the whole process group;
  // the services drain on the first of SIGINT/SIGTERM and die on a repeated
  // one, so forwarding SIGINT again would cut their drain short.
  for (const name of [...running.keys()].reverse()) running.get(name)?.kill("SIGTERM");
  setTimeout(() => {
    for (const [name, child] of running) {
      say(`${name} still running after ${FORCE_KILL_AFTER_MS / 1000}s; killing it`);
      child.kill("SIGKILL");
    }
    exitCode ||= 1;
  }, FORCE_KILL_AFTER_MS).unref();
  finishIfDone();
}

for (const name of selected) {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: join(ROOT, "services", name),
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.set(name, child);
  pipeLines(name, child.stdout, process.stdout);
  pipeLines(name, child.stderr, process.stderr);
  child.on("error", (error) => {
    say(`${name} could not start: ${error.message}`);
    running.delete(name);
    exitCode ||= 1;
    stopAll(`${name} failed to start`);
    finishIfDone();
  });
  // "close" fires after the child's output is fully read, so no last line is lost.
  child.on("close", (code, signal) => {
    if (!running.has(name)) return;
    running.delete(name);
    if (stopping) {
      say(`${name} stopped (${signal ?? `exit ${code}`})`);
      if (code !== null && code !== 0) exitCode ||= code;
    } else {
      exitCode = code === null || code === 0 ? 1 : code;
      say(`${name} exited unexpectedly (${signal ?? `exit ${code}`})`);
      stopAll(`${name} exited`);
    }
    finishIfDone();
  });
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (stopping) {
      // A second signal: do not wait for the drain.
      for (const child of running.values()) child.kill("SIGKILL");
      exitCode ||= 1;
      return;
    }
    stopAll(`received ${signal}`);
  });
}
