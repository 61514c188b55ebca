import { createHash } from "node:crypto";
import type { ModelsSection, RouteRule } from "@agent-runtime/config";
import { type ModelChatRequest, type RouteDecision, RuntimeError, textOf } from "@agent-runtime/contracts";

const HARD_WORDS =
  /\b(prove|derive|analy[sz]e|analysis|architecture|design|trade-?offs?|compare|contrast|optimi[sz]e|refactor|debug|step[- ]by[- ]step|explain why|reason|strategy|plan|evaluate|critique|multi-?step|algorithm|complexity|legal|contract|diagnos)/gi;
const CODE_HINT = /```|\bfunction\b|\bclass\b|=>|;\s*$|\bSELECT\b/m;

/**
 * A cheap complexity estimate in [0, 1] from the last user message: length,
 * reasoning vocabulary, code, several questions, long conversations.
 */
export function estimateComplexity(request: Pick<ModelChatRequest, "messages" | "tools">): number {
  const lastUser = [...request.messages].reverse().find((message) => message.role === "user");
  const text = textOf(lastUser?.content ?? "");
  let score = 0;
  score += Math.min(0.35, text.length / 2000);
  score += Math.min(0.4, (text.match(HARD_WORDS)?.length ?? 0) * 0.15);
  if (CODE_HINT.test(text)) score += 0.15;
  score += Math.min(0.1, Math.max(0, (text.match(/\?/g)?.length ?? 0) - 1) * 0.05);
  if (request.messages.length > 20) score += 0.05;
  return Math.min(1, Math.round(score * 100) / 100);
}

/** Deterministic weighted choice sticky by key (user, thread or run). */
export function pickVariant<T extends { weight: number }>(variants: readonly T[], stickyKey: string): T {
  const total = variants.reduce((sum, variant) => sum + variant.weight, 0);
  const digest = createHash("sha256").update(stickyKey).digest();
  const point = (digest.readUInt32BE(0) / 0x1_0000_0000) * total;
  let acc = 0;
  for (const variant of variants) {
    acc += variant.weight;
    if (point < acc) return variant;
  }
  return variants[variants.length - 1]!;
}

/** Whether a rule applies, and whether complexity took part in that answer. */
function ruleMatches(
  rule: RouteRule,
  request: ModelChatRequest,
  complexity: number,
): { matches: boolean; usedComplexity: boolean } {
  const when = rule.when;
  const no = { matches: false, usedComplexity: false };
  if (when.task && !(request.task && when.task.includes(request.task))) return no;
  if (when.agent && !(request.meta.agent && when.agent.includes(request.meta.agent))) return no;
  if (when.deepAnalysis !== undefined && Boolean(request.deepAnalysis) !== when.deepAnalysis) return no;
  const usedComplexity = when.minComplexity !== undefined || when.maxComplexity !== undefined;
  if (when.minComplexity !== undefined && complexity < when.minComplexity)
    return { matches: false, usedComplexity };
  if (when.maxComplexity !== undefined && complexity > when.maxComplexity)
    return { matches: false, usedComplexity };
  return { matches: true, usedComplexity };
}

/** The default threshold; `models.complexityThreshold` overrides it. */
export const COMPLEXITY_THRESHOLD = 0.45;

export interface RoutedDecision extends RouteDecision {
  chain: string[];
  /** True when the complexity estimate chose this route (a classifier may then refine it). */
  byComplexity: boolean;
}

/** A classifier's verdict, which moves the heuristic score to its side of the threshold. */
export interface ComplexityVerdict {
  label: "simple" | "complex";
  heuristic: number;
}

/** Applies a classifier verdict to the heuristic score. */
export function complexityFromVerdict(verdict: ComplexityVerdict, threshold: number): number {
  const score =
    verdict.label === "complex"
      ? Math.max(verdict.heuristic, threshold)
      : Math.min(verdict.heuristic, Math.max(0, threshold - 0.01));
  return Math.round(score * 100) / 100;
}

/** Chooses the tier for a request and records why. */
export function routeRequest(
  models: ModelsSection,
  request: ModelChatRequest,
  verdict?: ComplexityVerdict,
): RoutedDecision {
  if (request.model) {
    if (!models.models[request.model]) {
      throw new RuntimeError("validation", `unknown model "${request.model}"`, {
        details: { known: Object.keys(models.models) },
      });
    }
    return {
      tier: request.tier ?? "explicit",
      reason: `explicit model ${request.model}`,
      chain: [request.model],
      byComplexity: false,
    };
  }
  if (request.tier) {
    const chain = models.tiers[request.tier];
    if (!chain)
      throw new RuntimeError("validation", `unknown tier "${request.tier}"`, {
        details: { known: Object.keys(models.tiers) },
      });
    return { tier: request.tier, reason: `explicit tier ${request.tier}`, chain, byComplexity: false };
  }
  const threshold = models.complexityThreshold ?? COMPLEXITY_THRESHOLD;
  const complexity = verdict ? complexityFromVerdict(verdict, threshold) : estimateComplexity(request);
  const source = verdict
    ? `classifier said ${verdict.label} (heuristic ${verdict.heuristic}), complexity ${complexity}`
    : `complexity ${complexity}`;
  let consultedComplexity = false;
  for (const rule of models.routes) {
    const { matches, usedComplexity } = ruleMatches(rule, request, complexity);
    consultedComplexity ||= usedComplexity;
    if (!matches) continue;
    const why = usedComplexity ? ` (${source})` : "";
    if (rule.variants) {
      const key =
        rule.stickyBy === "thread"
          ? (request.meta.threadId ?? request.meta.userId ?? request.meta.requestId)
          : rule.stickyBy === "run"
            ? (request.meta.runId ?? request.meta.requestId)
            : (request.meta.userId ?? request.meta.threadId ?? request.meta.requestId);
      const variant = pickVariant(rule.variants, `${rule.name}:${key}`);
      return {
        tier: variant.tier,
        reason: `route ${rule.name}: variant ${variant.name} (sticky by ${rule.stickyBy})${why}`,
        variant: variant.name,
        complexity,
        chain: models.tiers[variant.tier]!,
        byComplexity: consultedComplexity,
      };
    }
    if (rule.tier)
      return {
        tier: rule.tier,
        reason: `route ${rule.name}${why}`,
        complexity,
        chain: models.tiers[rule.tier]!,
        byComplexity: consultedComplexity,
      };
  }
  if (request.deepAnalysis && models.tiers.strong) {
    return {
      tier: "strong",
      reason: "caller opted in to deep analysis",
      complexity,
      chain: models.tiers.strong,
      byComplexity: consultedComplexity,
    };
  }
  const simpleTasks = new Set(["route", "classify", "summarize", "plan"]);
  if (request.task && simpleTasks.has(request.task) && models.tiers.fast) {
    return {
      tier: "fast",
      reason: `task ${request.task} is routine`,
      complexity,
      chain: models.tiers.fast,
      byComplexity: consultedComplexity,
    };
  }
  if (models.tiers.strong && complexity >= threshold) {
    return {
      tier: "strong",
      reason: `${source} >= ${threshold}`,
      complexity,
      chain: models.tiers.strong,
      byComplexity: true,
    };
  }
  const tier = models.tiers[models.defaultTier] ? models.defaultTier : Object.keys(models.tiers)[0];
  if (!tier) throw new RuntimeError("unavailable", "no model tiers are configured");
  return {
    tier,
    reason: models.tiers.strong ? `${source} < ${threshold}` : `default tier ${tier}`,
    complexity,
    chain: models.tiers[tier]!,
    byComplexity: Boolean(models.tiers.strong) || consultedComplexity,
  };
}
