#!/usr/bin/env node
/**
 * `pnpm start`: builds the workspace (turbo; unchanged packages come from its
 * cache), then runs the compiled services, `node services/<name>/dist/main.js`.
 * `pnpm dev` (`start.mjs --dev`) skips the build and runs the TypeScript
 * sources through tsx instead (`--conditions=source`).
 *
 * Runs all five services, or the subset named in SERVICES=ingress,memory, each
 * in its own process with the inherited environment. Every output line is
 * prefixed with the service name (`[memory] {...json...}`; the build's with
 * `[build]`). SIGINT and SIGTERM are forwarded (as SIGTERM) so each service
 * drains; a service still running after 30 s is killed, and a second signal
 * kills at once. When a service exits on its own, the others are stopped and
 * this process exits non-zero. A failed build starts nothing and exits non-zero.
 *
 * No orphans: each service is linked to this process by an IPC channel and stops
 * (drains) when it closes, so killing this process by any signal, even SIGKILL,
 * stops them; and this process stops them when its own parent (`pnpm`) goes away.
 *
 * Ops ports (`/healthz`, `/readyz`, `/metrics`): each service reads its own
 * `<SERVICE>_OPS_PORT` (`INGRESS_OPS_PORT`, `MODEL_PROXY_OPS_PORT`, …), else picks a
 * free port and prints it. A plain `OPS_PORT` names one service's port; here, with
 * several services, it is the first of consecutive ports in start order's fixed
 * offsets (ingress +0, orchestrator +1, model-proxy +2, tool-executor +3, memory +4).
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const FROM_SOURCE = process.argv.slice(2).includes("--dev");
/** Start order: dependencies of the request path first, the public door last. */
const ALL = ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"];
const FORCE_KILL_AFTER_MS = 30_000;
const EXIT_WITH_PARENT = join(ROOT, "scripts", "exit-with-parent.mjs");
/** Offsets from a plain OPS_PORT when it serves several services (the 9100–9104 convention). */
const OPS_PORT_OFFSETS = { ingress: 0, orchestrator: 1, "model-proxy": 2, "tool-executor": 3, memory: 4 };

function opsPortVariable(name) {
  return `${name.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_OPS_PORT`;
}

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
/** @type {import("node:child_process").ChildProcess | undefined} */
let build;
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

/** Builds the selected services and the packages they depend on; resolves to turbo's exit code. */
function buildServices() {
  const turbo = createRequire(join(ROOT, "package.json")).resolve("turbo/bin/turbo");
  const filters = selected.map((name) => `--filter=@agent-runtime/${name}...`);
  say(`building ${selected.join(", ")} (turbo run build)`);
  build = spawn(process.execPath, [turbo, "run", "build", ...filters, "--output-logs=errors-only"], {
    cwd: ROOT,
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Build output goes to stderr, so stdout carries only the services' lines.
  pipeLines("build", build.stdout, process.stderr);
  pipeLines("build", build.stderr, process.stderr);
  return new Promise((resolve) => {
    build?.on("error", (error) => {
      say(`could not run turbo: ${error.message}`);
      resolve(1);
    });
    build?.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** A service's environment: one plain OPS_PORT becomes distinct ports when several services run. */
function serviceEnv(name) {
  const env = { ...process.env };
  // a person at a terminal reads pretty lines (in colour); a pipe or a file gets JSON
  if (!env.LOG_FORMAT && process.stdout.isTTY) {
    env.LOG_FORMAT = "pretty";
    env.FORCE_COLOR ??= "1";
  }
  const base = process.env.OPS_PORT?.trim();
  if (selected.length > 1 && base !== undefined && base !== "") {
    delete env.OPS_PORT;
    const own = opsPortVariable(name);
    if (!env[own]) env[own] = base === "0" ? "0" : String(Number(base) + OPS_PORT_OFFSETS[name]);
  }
  return env;
}

function startService(name) {
  const preload = ["--import", EXIT_WITH_PARENT];
  const args = FROM_SOURCE
    ? ["--conditions=source", "--import", "tsx", ...preload, "src/main.ts"]
    : [...preload, join("dist", "main.js")];
  const env = serviceEnv(name);
  const child = spawn(process.execPath, args, {
    cwd: join(ROOT, "services", name),
    env,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
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
    if (build && build.exitCode === null && build.signalCode === null) {
      // Still building: nothing runs yet; stop the build and start nothing.
      stopping = true;
      exitCode ||= 1;
      build.kill("SIGTERM");
      return;
    }
    if (stopping) {
      // A second signal: do not wait for the drain.
      for (const child of running.values()) child.kill("SIGKILL");
      exitCode ||= 1;
      return;
    }
    stopAll(`received ${signal}`);
  });
}

if (!FROM_SOURCE) {
  const code = await buildServices();
  if (stopping) {
    say("stopped during the build; nothing started");
    process.exit(exitCode);
  }
  if (code !== 0) {
    say(`build failed (exit ${code}); nothing started`);
    process.exit(code);
  }
}
const base = process.env.OPS_PORT?.trim();
if (selected.length > 1 && base && base !== "0") {
  if (!/^\d+$/.test(base) || Number(base) + 4 > 65_535) {
    say(
      `OPS_PORT=${base} is not a port; set it to a number (or the per-service ${selected.map(opsPortVariable).join(", ")})`,
    );
    process.exit(2);
  }
  say(
    `OPS_PORT=${base} with several services: ${selected.map((name) => `${name} ${serviceEnv(name)[opsPortVariable(name)]}`).join(", ")}`,
  );
}

// the parent (pnpm) gone means nobody waits for us: stop the services instead of leaving them behind
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stopAll("the parent process exited");
}, 1000).unref();

for (const name of selected) startService(name);
