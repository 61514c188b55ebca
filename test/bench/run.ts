/**
 * `pnpm bench [name...]` runs the benchmark scripts in this folder one after
 * another (each in its own process, so one cannot skew another) and lists the
 * JSON files they wrote under test/bench/results/.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const order = ["stack", "model-proxy", "tool-executor", "memory", "orchestrator", "ingress", "ledger"];
/** Not benchmarks: this runner, shared statistics and the ledger's helper modules. */
const isHelper = (name: string) => name === "run" || name === "stats" || name.startsWith("ledger-");
const requested = process.argv.slice(2);
const available = readdirSync(here)
  .filter((file) => file.endsWith(".ts"))
  .map((file) => file.replace(/\.ts$/, ""))
  .filter((name) => !isHelper(name));
const names = (requested.length > 0 ? requested : order.filter((name) => available.includes(name))).concat(
  requested.length > 0 ? [] : available.filter((name) => !order.includes(name)),
);

let failed = 0;
for (const name of names) {
  const file = join(here, `${name}.ts`);
  if (!existsSync(file)) {
    console.error(`no benchmark named ${name} (have: ${available.join(", ")})`);
    failed++;
    continue;
  }
  console.log(`\n=== bench: ${name} ===`);
  const result = spawnSync(process.execPath, ["--conditions=source", "--import", "tsx", file], {
    stdio: "inherit",
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" },
  });
  if (result.status !== 0) {
    console.error(`bench ${name} failed with exit code ${result.status}`);
    failed++;
  }
}
console.log(`\nresults in ${join(here, "results")}`);
process.exit(failed > 0 ? 1 : 0);
