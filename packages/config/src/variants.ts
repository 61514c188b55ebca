import { createHash } from "node:crypto";

/** What a variant choice is sticky by. */
export type StickyBy = "user" | "thread" | "run";

/** The request fields a sticky key is drawn from (a request's `meta`). */
export interface StickyFields {
  requestId: string;
  runId?: string | undefined;
  userId?: string | undefined;
  threadId?: string | undefined;
}

/**
 * The key a variant choice is sticky by: the user, the thread or the run, each falling back to the
 * next broader one that is known, and the run before the single request, so every step of a run
 * (the prompt the orchestrator builds and each model call) lands in the same variant.
 */
export function stickyKeyOf(stickyBy: StickyBy, meta: StickyFields): string {
  switch (stickyBy) {
    case "thread":
      return meta.threadId ?? meta.userId ?? meta.runId ?? meta.requestId;
    case "run":
      return meta.runId ?? meta.requestId;
    case "user":
      return meta.userId ?? meta.threadId ?? meta.runId ?? meta.requestId;
  }
}

/** Deterministic weighted choice by key: the same key always gets the same variant. */
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

/** The route rule an agent's own `variants` become (see `agentRouteRules`). */
export function agentRuleName(agent: string): string {
  return `agent:${agent}`;
}

/**
 * The variant of a rule a request falls in. The orchestrator (for an agent's prompt variant) and
 * the model proxy (for its tier or model, and the `variant` of its usage record) both call this,
 * so they agree without carrying the choice between them.
 */
export function chooseVariant<T extends { weight: number }>(
  rule: { name: string; variants: readonly T[]; stickyBy: StickyBy },
  meta: StickyFields,
): T {
  return pickVariant(rule.variants, `${rule.name}:${stickyKeyOf(rule.stickyBy, meta)}`);
}
