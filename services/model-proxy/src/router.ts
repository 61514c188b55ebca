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

function ruleMatches(rule: RouteRule, request: ModelChatRequest, complexity: number): boolean {
  const when = rule.when;
  if (when.task && !(request.task && when.task.includes(request.task))) return false;
  if (when.agent && !(request.meta.agent && when.agent.includes(request.meta.agent))) return false;
  if (when.deepAnalysis !== undefined && Boolean(request.deepAnalysis) !== when.deepAnalysis) return false;
  if (when.minComplexity !== undefined && complexity < when.minComplexity) return false;
  if (when.maxComplexity !== undefined && complexity > when.maxComplexity) return false;
  return true;
}

export const COMPLEXITY_THRESHOLD = 0.45;

/** Chooses the tier for a request and records why. */
export function routeRequest(
  models: ModelsSection,
  request: ModelChatRequest,
): RouteDecision & { chain: string[] } {
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
    };
  }
  if (request.tier) {
    const chain = models.tiers[request.tier];
    if (!chain)
      throw new RuntimeError("validation", `unknown tier "${request.tier}"`, {
        details: { known: Object.keys(models.tiers) },
      });
    return { tier: request.tier, reason: `explicit tier ${request.tier}`, chain };
  }
  const complexity = estimateComplexity(request);
  for (const rule of models.routes) {
    if (!ruleMatches(rule, request, complexity)) continue;
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
        reason: `route ${rule.name}: variant ${variant.name} (sticky by ${rule.stickyBy})`,
        variant: variant.name,
        complexity,
        chain: models.tiers[variant.tier]!,
      };
    }
    if (rule.tier)
      return { tier: rule.tier, reason: `route ${rule.name}`, complexity, chain: models.tiers[rule.tier]! };
  }
  if (request.deepAnalysis && models.tiers.strong) {
    return {
      tier: "strong",
      reason: "caller opted in to deep analysis",
      complexity,
      chain: models.tiers.strong,
    };
  }
  const simpleTasks = new Set(["route", "classify", "summarize"]);
  if (request.task && simpleTasks.has(request.task) && models.tiers.fast) {
    return { tier: "fast", reason: `task ${request.task} is routine`, complexity, chain: models.tiers.fast };
  }
  if (models.tiers.strong && complexity >= COMPLEXITY_THRESHOLD) {
    return {
      tier: "strong",
      reason: `complexity ${complexity} >= ${COMPLEXITY_THRESHOLD}`,
      complexity,
      chain: models.tiers.strong,
    };
  }
  const tier = models.tiers[models.defaultTier] ? models.defaultTier : Object.keys(models.tiers)[0];
  if (!tier) throw new RuntimeError("unavailable", "no model tiers are configured");
  return {
    tier,
    reason: models.tiers.strong
      ? `complexity ${complexity} < ${COMPLEXITY_THRESHOLD}`
      : `default tier ${tier}`,
    complexity,
    chain: models.tiers[tier]!,
  };
}
