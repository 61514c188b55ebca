/**
 * `pnpm replay`: the workload naive and as configured (and, with REPLAY_ATTRIBUTE=1, once per
 * mechanism switched off), printed and written to test/replay/results/ as latest.json,
 * report.md and chart.svg. REPLAY_LIMIT=N runs N tasks of each kind (a smoke run).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type RunFigures, replayOnce } from "./replay.js";
import { configured, MECHANISMS, type Mechanism, naive } from "./settings.js";
import { loadWorkload } from "./workload.js";

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), "results");

export interface ReplayResult {
  naive: RunFigures;
  configured: RunFigures;
  savings: Partial<Record<Mechanism, number>>;
  attribution: Partial<Record<Mechanism, RunFigures>>;
  configuredShareOfNaive: number;
  target: { share: number; met: boolean };
  workload: { tasks: number; seed: number; limit: number | null };
  at: string;
}

export async function replay(options: { limit?: number; attribute?: boolean } = {}): Promise<ReplayResult> {
  const workload = loadWorkload();
  const runOptions = options.limit ? { limit: options.limit } : {};
  const naiveRun = await replayOnce(workload, naive(), runOptions);
  console.log(summaryLine(naiveRun));
  const configuredRun = await replayOnce(workload, configured(), runOptions);
  console.log(summaryLine(configuredRun));
  const savings: Partial<Record<Mechanism, number>> = {};
  const attribution: Partial<Record<Mechanism, RunFigures>> = {};
  if (options.attribute) {
    for (const mechanism of MECHANISMS) {
      const without = await replayOnce(workload, configured(mechanism), runOptions);
      console.log(summaryLine(without));
      attribution[mechanism] = without;
      savings[mechanism] = Math.round((without.usd - configuredRun.usd) * 1e6) / 1e6;
    }
  }
  const share = naiveRun.usd > 0 ? Math.round((configuredRun.usd / naiveRun.usd) * 10_000) / 10_000 : 0;
  return {
    naive: naiveRun,
    configured: configuredRun,
    savings,
    attribution,
    configuredShareOfNaive: share,
    target: {
      share: 0.3,
      met:
        share <= 0.3 && configuredRun.correct === configuredRun.tasks && naiveRun.correct === naiveRun.tasks,
    },
    workload: { tasks: naiveRun.tasks, seed: workload.seed, limit: options.limit ?? null },
    at: new Date().toISOString(),
  };
}

function summaryLine(run: RunFigures): string {
  return `${run.name}: $${run.usd.toFixed(4)}, ${run.correct}/${run.tasks} correct, prompt ${run.tokens.prompt} (cached ${run.tokens.cached}), completion ${run.tokens.completion}, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, ${run.wallSeconds} s${run.wrong.length > 0 ? `\n  not correct: ${run.wrong.slice(0, 8).join("\n  ")}` : ""}`;
}

export function markdown(result: ReplayResult): string {
  const runs = [result.naive, result.configured, ...Object.values(result.attribution)];
  const lines = [
    "# Cost replay",
    "",
    `${result.workload.tasks} tasks (seed ${result.workload.seed}${result.workload.limit ? `, smoke: ${result.workload.limit} per kind` : ""}), ${result.at}.`,
    "",
    `Configured costs **${(result.configuredShareOfNaive * 100).toFixed(1)} %** of naive (target ≤ 30 % with every task correct: ${result.target.met ? "met" : "not met"}).`,
    "",
    "| run | USD | correct | prompt tokens | cached | completion | strong calls | fast calls | p50 ms | p99 ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...runs.map(
      (run) =>
        `| ${run.name} | ${run.usd.toFixed(4)} | ${run.correct}/${run.tasks} | ${run.tokens.prompt} | ${run.tokens.cached} (${(run.cachedShare * 100).toFixed(1)} %) | ${run.tokens.completion} | ${run.calls.strong} | ${run.calls.fast} | ${run.latencyMs.p50} | ${run.latencyMs.p99} |`,
    ),
    "",
  ];
  if (Object.keys(result.savings).length > 0) {
    lines.push("## Saving per mechanism (configured with it switched off, minus configured)", "");
    lines.push("| mechanism | USD saved |", "| --- | ---: |");
    for (const [mechanism, usd] of Object.entries(result.savings))
      lines.push(`| ${mechanism} | ${usd?.toFixed(4)} |`);
    lines.push("");
  }
  for (const run of [result.naive, result.configured]) {
    lines.push(`## ${run.name}: USD per tenant and agent`, "");
    lines.push(
      `- tenants: ${Object.entries(run.usdByTenant)
        .map(([key, usd]) => `${key} ${usd.toFixed(4)}`)
        .join(", ")}`,
    );
    lines.push(
      `- agents: ${Object.entries(run.usdByAgent)
        .map(([key, usd]) => `${key} ${usd.toFixed(4)}`)
        .join(", ")}`,
    );
    lines.push(
      `- webhook: ${run.webhook.calls} calls for ${run.webhook.tasks} tasks (exactly once: ${run.webhook.exactlyOnce})`,
    );
    lines.push(
      `- interactive p99 during batch ${run.latencyMs.interactiveP99DuringBatch} ms, otherwise ${run.latencyMs.interactiveP99Other} ms`,
    );
    if (run.wrong.length > 0) lines.push(`- not correct: ${run.wrong.slice(0, 10).join("; ")}`);
    lines.push("");
  }
  return lines.join("\n");
}

/** A bar chart of USD per run (SVG). */
export function chart(result: ReplayResult): string {
  const runs = [result.naive, result.configured, ...Object.values(result.attribution)];
  const max = Math.max(...runs.map((run) => run.usd), 1e-9);
  const barHeight = 26;
  const width = 720;
  const left = 190;
  const height = runs.length * (barHeight + 8) + 50;
  const bars = runs
    .map((run, index) => {
      const y = 36 + index * (barHeight + 8);
      const length = Math.max(1, ((width - left - 110) * run.usd) / max);
      const colour = run.name === "naive" ? "#c0504d" : run.name === "configured" ? "#4f81bd" : "#9bbb59";
      return `<text x="${left - 8}" y="${y + 18}" text-anchor="end">${run.name}</text><rect x="${left}" y="${y}" width="${length.toFixed(1)}" height="${barHeight}" fill="${colour}"/><text x="${left + length + 6}" y="${y + 18}">$${run.usd.toFixed(4)} · ${run.correct}/${run.tasks}</text>`;
    })
    .join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
<text x="10" y="20" font-size="15">Replay: USD per run (tasks correct)</text>
${bars}
</svg>
`;
}

export function writeResults(result: ReplayResult, directory = RESULTS): string {
  mkdirSync(directory, { recursive: true });
  writeFileSync(join(directory, "latest.json"), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(directory, "report.md"), `${markdown(result)}\n`);
  writeFileSync(join(directory, "chart.svg"), chart(result));
  return directory;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const limit = process.env.REPLAY_LIMIT ? Number(process.env.REPLAY_LIMIT) : undefined;
  const result = await replay({
    ...(limit ? { limit } : {}),
    attribute: process.env.REPLAY_ATTRIBUTE === "1",
  });
  console.log(markdown(result));
  console.log(`wrote ${writeResults(result)}`);
  process.exit(0);
}
