#!/usr/bin/env node
/**
 * `pnpm start`: runs the five services (or the subset in SERVICES=a,b) from
 * source, prefixes their output with the service name, forwards SIGINT and
 * SIGTERM so each drains, and stops all when one exits unexpectedly.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const all = ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"];
const wanted = process.env.SERVICES ? process.env.SERVICES.split(",").map((name) => name.trim()) : all;
const unknown = wanted.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown services: ${unknown.join(", ")} (known: ${all.join(", ")})\n`);
  process.exit(2);
}

const children = new Map();
let stopping = false;

function stopAll(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) child.kill("SIGTERM");
  const force = setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
  }, 30_000);
  force.unref();
  const wait = setInterval(() => {
    if (children.size === 0) {
      clearInterval(wait);
      process.exit(code);
    }
  }, 100);
}

for (const name of all.filter((service) => wanted.includes(service))) {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: join(root, "services", name),
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.set(name, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => process.stdout.write(`[${name}] ${line}\n`));
  }
  child.on("exit", (code, signal) => {
    children.delete(name);
    if (!stopping) {
      process.stderr.write(`[${name}] exited (${signal ?? code}); stopping the others\n`);
      stopAll(code === 0 ? 1 : (code ?? 1));
    }
  });
}

process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));
