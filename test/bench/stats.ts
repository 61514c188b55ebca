import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Percentiles of latencies in milliseconds (nearest-rank). */
export function summarize(samples: number[]): LatencySummary {
  if (samples.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, mean: 0, min: 0, max: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    count: sorted.length,
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    mean: round(sorted.reduce((sum, value) => sum + value, 0) / sorted.length),
    min: round(sorted[0]!),
    max: round(sorted[sorted.length - 1]!),
  };
}

/** Runs `task` `total` times with `concurrency` in flight; returns per-call latencies (ms) and wall time. */
export async function runConcurrent(
  total: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
): Promise<{ latencies: number[]; wallMs: number; errors: number }> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const index = next++;
      const t0 = performance.now();
      try {
        await task(index);
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return { latencies, wallMs: performance.now() - started, errors };
}

function leaves(value: unknown, prefix = "", out = new Map<string, number>()): Map<string, number> {
  if (typeof value === "number") out.set(prefix, value);
  else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) leaves(inner, prefix ? `${prefix}.${key}` : key, out);
  }
  return out;
}

/**
 * Writes `test/bench/results/<name>.json` with a timestamp; the run before is
 * kept as `<name>.previous.json` and the medians, p99s and rates of the two
 * are printed side by side.
 */
export function writeResult(name: string, figures: Record<string, unknown>): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  if (existsSync(path)) {
    const previous = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, `${name}.previous.json`), `${JSON.stringify(previous, null, 2)}\n`);
    const before = leaves(previous);
    const rows = [...leaves(figures)]
      .filter(
        ([key]) =>
          /(p50|p99|PerSecond|Ms$|saving|speedup)/.test(key) && before.has(key) && before.get(key) !== 0,
      )
      .map(
        ([key, now]) => `  ${key}: ${before.get(key)} -> ${now} (x${(now / before.get(key)!).toFixed(2)})`,
      );
    if (rows.length > 0) console.log(`compared with the run of ${String(previous.at)}:\n${rows.join("\n")}`);
  }
  const body = {
    name,
    at: new Date().toISOString(),
    node: process.version,
    ...figures,
  };
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  return path;
}
