import {
  agentRuleName,
  chooseVariant,
  type ModelsSection,
  pickVariant,
  type RouteRule,
} from "@agent-runtime/config";
import {
  lastUserText,
  type ModelChatRequest,
  type RouteDecision,
  RuntimeError,
} from "@agent-runtime/contracts";

const HARD_WORDS =
  /\b(prove|derive|analy[sz]e|analysis|architecture|design|trade-?offs?|compare|contrast|optimi[sz]e|refactor|debug|step[- ]by[- ]step|explain why|reason|strategy|plan|evaluate|critique|multi-?step|algorithm|complexity|legal|contract|diagnos)/gi;
const CODE_HINT = /```|\bfunction\b|\bclass\b|=>|;\s*$|\bSELECT\b/m;

/**
 * A cheap complexity estimate in [0, 1] from the last user message: length,
 * reasoning vocabulary, code, several questions, long conversations.
 */
export function estimateComplexity(request: Pick<ModelChatRequest, "messages" | "tools">): number {
  const text = lastUserText(request.messages);
  let score = 0;
  score += Math.min(0.35, text.length / 2000);
  score += Math.min(0.4, (text.match(HARD_WORDS)?.length ?? 0) * 0.15);
  if (CODE_HINT.test(text)) score += 0.15;
  score += Math.min(0.1, Math.max(0, (text.match(/\?/g)?.length ?? 0) - 1) * 0.05);
  if (request.messages.length > 20) score += 0.05;
  return Math.min(1, Math.round(score * 100) / 100);
}

/** Deterministic weighted choice sticky by key (user, thread or run); shared with the orchestrator. */
export { pickVariant };

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
    return withLabel(models, request, {
      tier: request.tier ?? "explicit",
      reason: `explicit model ${request.model}`,
      chain: [request.model],
      byComplexity: false,
    });
  }
  if (request.tier) {
    const chain = models.tiers[request.tier];
    if (!chain)
      throw new RuntimeError("validation", `unknown tier "${request.tier}"`, {
        details: { known: Object.keys(models.tiers) },
      });
    return withLabel(models, request, {
      tier: request.tier,
      reason: `explicit tier ${request.tier}`,
      chain,
      byComplexity: false,
    });
  }
  const threshold = models.complexityThreshold ?? COMPLEXITY_THRESHOLD;
  const complexity = verdict ? complexityFromVerdict(verdict, threshold) : estimateComplexity(request);
  const source = verdict
    ? `classifier said ${verdict.label} (heuristic ${verdict.heuristic}), complexity ${complexity}`
    : `complexity ${complexity}`;
  const decided = decide(models, request, complexity, source);
  // a variant that only labels the call (an agent's prompt variant) is kept on whatever routes it
  return decided.labelled ? { ...decided.decision, variant: decided.labelled } : decided.decision;
}

/**
 * An explicit tier or model skips the rules, but not the agent's prompt variant: the call is
 * still labelled with it, so its cost counts for the variant that wrote its prompt.
 */
function withLabel(
  models: ModelsSection,
  request: ModelChatRequest,
  decision: RoutedDecision,
): RoutedDecision {
  const agent = request.meta.agent;
  const rule = agent ? models.routes.find((candidate) => candidate.name === agentRuleName(agent)) : undefined;
  if (!rule?.variants) return decision;
  const variant = chooseVariant({ ...rule, variants: rule.variants }, request.meta);
  return variant.tier || variant.model ? decision : { ...decision, variant: variant.name };
}

/** The routing decision before a labelling variant is attached. */
function decide(
  models: ModelsSection,
  request: ModelChatRequest,
  complexity: number,
  source: string,
): { decision: RoutedDecision; labelled?: string } {
  const threshold = models.complexityThreshold ?? COMPLEXITY_THRESHOLD;
  let consultedComplexity = false;
  let labelled: { name: string; reason: string } | undefined;
  const decided = (decision: RoutedDecision) =>
    labelled
      ? {
          decision: { ...decision, reason: `${labelled.reason}; ${decision.reason}` },
          labelled: labelled.name,
        }
      : { decision };
  for (const rule of models.routes) {
    const { matches, usedComplexity } = ruleMatches(rule, request, complexity);
    consultedComplexity ||= usedComplexity;
    if (!matches) continue;
    const why = usedComplexity ? ` (${source})` : "";
    if (rule.variants) {
      if (labelled) continue; // one variant per call: the first variant rule that matches
      const variant = chooseVariant({ ...rule, variants: rule.variants }, request.meta);
      const reason = `route ${rule.name}: variant ${variant.name} (sticky by ${rule.stickyBy})${why}`;
      if (variant.model) {
        if (!models.models[variant.model])
          throw new RuntimeError("validation", `route ${rule.name}: unknown model "${variant.model}"`, {
            details: { known: Object.keys(models.models) },
          });
        return {
          decision: {
            tier: variant.tier ?? "explicit",
            reason,
            variant: variant.name,
            complexity,
            chain: [variant.model],
            byComplexity: consultedComplexity,
          },
        };
      }
      if (variant.tier)
        return {
          decision: {
            tier: variant.tier,
            reason,
            variant: variant.name,
            complexity,
            chain: tierChain(models, variant.tier, rule.name),
            byComplexity: consultedComplexity,
          },
        };
      labelled = { name: variant.name, reason };
      continue;
    }
    if (rule.tier)
      return decided({
        tier: rule.tier,
        reason: `route ${rule.name}${why}`,
        complexity,
        chain: tierChain(models, rule.tier, rule.name),
        byComplexity: consultedComplexity,
      });
  }
  if (request.deepAnalysis && models.tiers.strong) {
    return decided({
      tier: "strong",
      reason: "caller opted in to deep analysis",
      complexity,
      chain: models.tiers.strong,
      byComplexity: consultedComplexity,
    });
  }
  const simpleTasks = new Set(["route", "classify", "summarize", "plan"]);
  if (request.task && simpleTasks.has(request.task) && models.tiers.fast) {
    return decided({
      tier: "fast",
      reason: `task ${request.task} is routine`,
      complexity,
      chain: models.tiers.fast,
      byComplexity: consultedComplexity,
    });
  }
  if (models.tiers.strong && complexity >= threshold) {
    return decided({
      tier: "strong",
      reason: `${source} >= ${threshold}`,
      complexity,
      chain: models.tiers.strong,
      byComplexity: true,
    });
  }
  const tier = models.tiers[models.defaultTier] ? models.defaultTier : Object.keys(models.tiers)[0];
  if (!tier) throw new RuntimeError("unavailable", "no model tiers are configured");
  return decided({
    tier,
    reason: models.tiers.strong ? `${source} < ${threshold}` : `default tier ${tier}`,
    complexity,
    chain: models.tiers[tier]!,
    byComplexity: Boolean(models.tiers.strong) || consultedComplexity,
  });
}

/** A rule's tier as a fallback chain; a tier no one configured is a typed error, not a crash. */
function tierChain(models: ModelsSection, tier: string, rule: string): string[] {
  const chain = models.tiers[tier];
  if (!chain)
    throw new RuntimeError("validation", `route ${rule}: unknown tier "${tier}"`, {
      details: { known: Object.keys(models.tiers) },
    });
  return chain;
}
