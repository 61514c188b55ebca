import type { ComplexityClassifier } from "@agent-runtime/config";
import { lastUserText, type ModelChatReply, type ModelChatRequest, textOf } from "@agent-runtime/contracts";
import type { ComplexityVerdict } from "./router.js";

export const CLASSIFIER_PROMPT =
  "You triage requests for an AI assistant. Decide whether answering the user's message well needs a strong model " +
  "(multi-step reasoning, analysis, design, non-trivial code or maths) or a small fast model is enough " +
  "(look-ups, chit-chat, short factual or formatting tasks). Reply with exactly one word: SIMPLE or COMPLEX.";

/** Should this request get a classifier's second opinion? Only when the heuristic is unsure. */
export function wantsClassifier(
  classifier: ComplexityClassifier | undefined,
  decision: { byComplexity: boolean; complexity?: number },
): classifier is ComplexityClassifier {
  if (!classifier || !decision.byComplexity || decision.complexity === undefined) return false;
  return decision.complexity >= classifier.minComplexity && decision.complexity <= classifier.maxComplexity;
}

/**
 * The classifier call as an ordinary deterministic model.chat on the
 * classifier's tier: it is cached, limited, retried and accounted like any
 * other call (usage route `classify`).
 */
export function classifierRequest(
  classifier: ComplexityClassifier,
  request: ModelChatRequest,
  now = Date.now(),
): ModelChatRequest {
  const text = lastUserText(request.messages).slice(0, classifier.maxInputChars);
  return {
    meta: {
      ...request.meta,
      requestId: `${request.meta.requestId}:classify`,
      deadline: Math.min(request.meta.deadline, now + classifier.timeoutMs),
    },
    messages: [
      { role: "system", content: CLASSIFIER_PROMPT },
      { role: "user", content: text },
    ],
    tier: classifier.tier,
    task: "classify",
    temperature: 0,
    maxTokens: 3,
  };
}

/** Reads SIMPLE / COMPLEX from the reply; anything else is no verdict. */
export function parseVerdict(reply: ModelChatReply, heuristic: number): ComplexityVerdict | undefined {
  const text = textOf(reply.message.content ?? "")
    .trim()
    .toLowerCase();
  if (/^\W*complex\b/.test(text)) return { label: "complex", heuristic };
  if (/^\W*simple\b/.test(text)) return { label: "simple", heuristic };
  return undefined;
}
