/**
 * `pnpm replay`: the workload naive, as configured, and as configured without its batch work (the
 * interactive latency baseline); with REPLAY_ATTRIBUTE=1 also once per mechanism switched off, so
 * each saving is attributed. Printed and written to test/replay/results/ as latest.json, report.md
 * and chart.svg. REPLAY_LIMIT=N runs N tasks of each kind (a smoke run, written to the system's temporary
 * directory under replay-smoke/ instead).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type RunFigures, type RunOutcome, replayOnce } from "./replay.js";
import {
  configured,
  configuredWithoutBatch,
  MECHANISM_LABELS,
  MECHANISMS,
  type Mechanism,
  naive,
} from "./settings.js";
import { loadWorkload } from "./workload.js";

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), "results");

/** How far interactive p99 may rise while batch work runs. */
export const BATCH_LATENCY_TARGET = 1.2;

/** Interactive latency with and without the batch work beside it, on the same tasks. */
export interface BatchLatency {
  batchP50Ms: number;
  batchP99Ms: number;
  batchWindowSeconds: number;
  /** Interactive turns that overlapped the batch window in the configured run. */
  interactiveTasks: number;
  interactiveP99DuringBatchMs: number;
  /** The same turns in the run without batch work. */
  interactiveP99WithoutBatchMs: number;
  ratio: number;
  target: number;
  met: boolean;
}

/**
 * The batch latency of several rounds (each a run with the batch work and one without it): the
 * figures of the round with the median ratio, and every round's. A p99 over the few dozen turns
 * that overlap the batch window is nearly their maximum, so one round on a shared two-core machine
 * says little; the median of rounds is the figure to compare.
 */
export interface BatchLatencyRounds extends BatchLatency {
  rounds: BatchLatency[];
}

export interface ReplayResult {
  naive: RunFigures;
  configured: RunFigures;
  configuredWithoutBatch: RunFigures;
  /** USD the configured run would cost more with each mechanism off (its run minus configured). */
  savings: Partial<Record<Mechanism, number>>;
  attribution: Partial<Record<Mechanism, RunFigures>>;
  configuredShareOfNaive: number;
  batchLatency: BatchLatencyRounds;
  target: { share: number; met: boolean };
  workload: { tasks: number; seed: number; limit: number | null };
  at: string;
}

/** The figures without the per-task detail a run keeps for comparisons. */
function figuresOf(outcome: RunOutcome): RunFigures {
  const { taskLatencyMs: _latencies, duringBatch: _during, ...figures } = outcome;
  return figures;
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))]!;
}

/** Compares the interactive turns that ran beside the batch work with the same turns run without it. */
export function batchLatency(withBatch: RunOutcome, withoutBatch: RunOutcome): BatchLatency {
  const tasks = withBatch.duringBatch.filter((task) => withoutBatch.taskLatencyMs[task] !== undefined);
  const during = p99(tasks.map((task) => withBatch.taskLatencyMs[task]!));
  const without = p99(tasks.map((task) => withoutBatch.taskLatencyMs[task]!));
  const ratio = without > 0 ? Math.round((during / without) * 100) / 100 : 0;
  return {
    batchP50Ms: withBatch.latencyMs.batchP50,
    batchP99Ms: withBatch.latencyMs.batchP99,
    batchWindowSeconds: withBatch.latencyMs.batchWindowSeconds,
    interactiveTasks: tasks.length,
    interactiveP99DuringBatchMs: during,
    interactiveP99WithoutBatchMs: without,
    ratio,
    target: BATCH_LATENCY_TARGET,
    met: tasks.length > 0 && ratio <= BATCH_LATENCY_TARGET,
  };
}

/** The round with the median ratio (the lower middle one of an even count), with every round kept. */
export function medianRound(rounds: readonly BatchLatency[]): BatchLatencyRounds {
  if (rounds.length === 0) throw new Error("no batch latency round was run");
  const sorted = [...rounds].sort((a, b) => a.ratio - b.ratio);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...median, rounds: [...rounds] };
}

/** Rounds of the batch latency comparison (`REPLAY_LATENCY_ROUNDS`, 5 by default). */
const LATENCY_ROUNDS = Math.max(1, Number(process.env.REPLAY_LATENCY_ROUNDS ?? 5));

export async function replay(options: { limit?: number; attribute?: boolean } = {}): Promise<ReplayResult> {
  const workload = loadWorkload();
  // each service in its own process, as deployed (REPLAY_STACK=in-process: all in this one)
  const runOptions = {
    ...(options.limit ? { limit: options.limit } : {}),
    processes: process.env.REPLAY_STACK !== "in-process",
  };
  const run = async (settings: Parameters<typeof replayOnce>[1]) => {
    const outcome = await replayOnce(workload, settings, runOptions);
    console.log(summaryLine(outcome));
    return outcome;
  };
  const naiveRun = await run(naive());
  const configuredRun = await run(configured());
  const withoutBatch = await run(configuredWithoutBatch());
  const rounds = [batchLatency(configuredRun, withoutBatch)];
  while (rounds.length < LATENCY_ROUNDS) {
    const withBatchAgain = await run(configured());
    rounds.push(batchLatency(withBatchAgain, await run(configuredWithoutBatch())));
  }
  const savings: Partial<Record<Mechanism, number>> = {};
  const attribution: Partial<Record<Mechanism, RunFigures>> = {};
  if (options.attribute) {
    for (const mechanism of MECHANISMS) {
      const without = await run(configured(mechanism));
      attribution[mechanism] = figuresOf(without);
      savings[mechanism] = Math.round((without.usd - configuredRun.usd) * 1e6) / 1e6;
    }
  }
  const share = naiveRun.usd > 0 ? Math.round((configuredRun.usd / naiveRun.usd) * 10_000) / 10_000 : 0;
  return {
    naive: figuresOf(naiveRun),
    configured: figuresOf(configuredRun),
    configuredWithoutBatch: figuresOf(withoutBatch),
    savings,
    attribution,
    configuredShareOfNaive: share,
    batchLatency: medianRound(rounds),
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
  return `${run.name}: $${run.usd.toFixed(4)}, ${run.correct}/${run.tasks} correct, prompt ${run.tokens.prompt} (cached ${run.tokens.cached}), completion ${run.tokens.completion}, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, batch p99 ${run.latencyMs.batchP99} ms, ${run.wallSeconds} s${run.wrong.length > 0 ? `\n  not correct: ${run.wrong.slice(0, 8).join("\n  ")}` : ""}`;
}

const percent = (value: number) => `${(value * 100).toFixed(1)} %`;

export function markdown(result: ReplayResult): string {
  const runs = [
    result.naive,
    result.configured,
    result.configuredWithoutBatch,
    ...Object.values(result.attribution),
  ];
  const latency = result.batchLatency;
  const lines = [
    "# Cost replay",
    "",
    `${result.workload.tasks} tasks (seed ${result.workload.seed}${result.workload.limit ? `, smoke: ${result.workload.limit} per kind` : ""}), ${result.at}.`,
    "",
    `Configured costs **${percent(result.configuredShareOfNaive)}** of naive (target ≤ 30 % with every task correct: ${result.target.met ? "met" : "not met"}).`,
    "",
    "| run | USD | correct | prompt tokens | cached | completion | strong calls | fast calls | tool calls | p50 ms | p99 ms | batch p99 ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...runs.map(
      (run) =>
        `| ${run.name} | ${run.usd.toFixed(4)} | ${run.correct}/${run.tasks} | ${run.tokens.prompt} | ${run.tokens.cached} (${percent(run.cachedShare)}) | ${run.tokens.completion} | ${run.calls.strong} | ${run.calls.fast} | ${run.toolServerCalls} | ${run.latencyMs.p50} | ${run.latencyMs.p99} | ${run.name.endsWith("no-batch") ? "–" : run.latencyMs.batchP99} |`,
    ),
    "",
  ];
  const attributed = Object.entries(result.savings) as Array<[Mechanism, number]>;
  if (attributed.length > 0) {
    lines.push(
      "## Saving per mechanism",
      "",
      "Each mechanism switched off in turn, everything else as configured: the saving is that run's USD minus the configured run's (model calls and tool calls likewise). Mechanisms overlap (summaries keep a thread inside the context budget, so the budget alone saves little beside them), so the savings do not add up to naive minus configured. A difference of a few hundredths of a cent is run-to-run noise (which prompts share a cached prefix depends on timing).",
      "",
      "| mechanism (switched off) | USD without it | USD saved | saved, share of naive | model calls saved | tool calls saved | correct without it |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const [mechanism, usd] of attributed) {
      const run = result.attribution[mechanism]!;
      lines.push(
        `| ${MECHANISM_LABELS[mechanism]} | ${run.usd.toFixed(4)} | ${usd.toFixed(4)} | ${result.naive.usd > 0 ? percent(usd / result.naive.usd) : "–"} | ${run.calls.strong + run.calls.fast - result.configured.calls.strong - result.configured.calls.fast} | ${run.toolServerCalls - result.configured.toolServerCalls} | ${run.correct}/${run.tasks} |`,
      );
    }
    lines.push("");
  }
  lines.push(
    "## Interactive latency beside batch work",
    "",
    `${latency.rounds.length} rounds, each a configured run with its batch work followed by one without it on the same machine; the median round (by ratio):`,
    `batch events p50 ${latency.batchP50Ms} ms, p99 ${latency.batchP99Ms} ms from publish to answer; the batch work ran for ${latency.batchWindowSeconds} s.`,
    `The ${latency.interactiveTasks} interactive turns that overlapped it: p99 ${latency.interactiveP99DuringBatchMs} ms; the same turns in the run without batch work: p99 ${latency.interactiveP99WithoutBatchMs} ms (${latency.ratio}×, target ≤ ${latency.target}×: ${latency.met ? "met" : "not met"}).`,
    "",
    "| round | turns beside batch | p99 with batch ms | p99 without ms | ratio | batch window s |",
    "| --- | --- | --- | --- | --- | --- |",
    ...latency.rounds.map(
      (round, index) =>
        `| ${index + 1} | ${round.interactiveTasks} | ${round.interactiveP99DuringBatchMs} | ${round.interactiveP99WithoutBatchMs} | ${round.ratio} | ${round.batchWindowSeconds} |`,
    ),
    "",
    `1-minute load average after the first configured run ${result.configured.loadAverage}, after the first run without batch work ${result.configuredWithoutBatch.loadAverage} (on a shared machine other work moves these latencies more than the batch does).`,
    "",
  );
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
      `- interactive p99 while batch work ran ${run.latencyMs.interactiveP99DuringBatch} ms (${run.latencyMs.interactiveDuringBatch} turns), otherwise ${run.latencyMs.interactiveP99Other} ms; batch p50 ${run.latencyMs.batchP50} ms, p99 ${run.latencyMs.batchP99} ms`,
    );
    if (run.wrong.length > 0) lines.push(`- not correct: ${run.wrong.slice(0, 10).join("; ")}`);
    lines.push("");
  }
  return lines.join("\n");
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A bar chart of USD per run (SVG), each mechanism's run labelled with the saving it shows. */
export function chart(result: ReplayResult): string {
  const runs = [result.naive, result.configured, ...Object.values(result.attribution)];
  const max = Math.max(...runs.map((run) => run.usd), 1e-9);
  const barHeight = 26;
  const width = 820;
  const left = 220;
  const height = runs.length * (barHeight + 8) + 50;
  const savingOf = (name: string) => {
    const mechanism = name.startsWith("without-") ? (name.slice("without-".length) as Mechanism) : undefined;
    const saved = mechanism ? result.savings[mechanism] : undefined;
    return saved === undefined ? "" : ` · saves $${saved.toFixed(4)}`;
  };
  const bars = runs
    .map((run, index) => {
      const y = 36 + index * (barHeight + 8);
      const length = Math.max(1, ((width - left - 230) * run.usd) / max);
      const colour = run.name === "naive" ? "#c0504d" : run.name === "configured" ? "#4f81bd" : "#9bbb59";
      return `<text x="${left - 8}" y="${y + 18}" text-anchor="end">${escapeXml(run.name)}</text><rect x="${left}" y="${y}" width="${length.toFixed(1)}" height="${barHeight}" fill="${colour}"/><text x="${left + length + 6}" y="${y + 18}">$${run.usd.toFixed(4)} · ${run.correct}/${run.tasks}${savingOf(run.name)}</text>`;
    })
    .join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
<text x="10" y="20" font-size="15">Replay: USD per run (tasks correct; saving of each mechanism switched off)</text>
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
  // a smoke run never replaces the checked-in figures
  console.log(`wrote ${writeResults(result, limit ? join(tmpdir(), "replay-smoke") : RESULTS)}`);
  process.exit(0);
}
