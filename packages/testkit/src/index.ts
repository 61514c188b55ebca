export type { EmbeddingOptions } from "./embedding.js";
export { cosineSimilarity, estimateTokens, fakeEmbedding } from "./embedding.js";
export type { FakeOpenAI, FakeOpenAIOptions } from "./fake-openai.js";
export { contentText, echoHandler, startFakeOpenAI, textStep, toolCallStep } from "./fake-openai.js";
export type {
  GradedCall,
  GradedQuestion,
  GradedToolCall,
  GradingProvider,
  GradingProviderOptions,
  ModelPrice,
} from "./grading-provider.js";
export {
  createGradingProvider,
  DEFAULT_PRICES,
  embeddingBill,
  promptText,
  QUESTION_TAG,
  usdOf,
  VERDICT_TAG,
  verdictOf,
} from "./grading-provider.js";
export { CACHE_MIN_TOKENS, CACHE_STEP_TOKENS, PromptPrefixCache } from "./prompt-cache.js";
export type {
  ChatCompletionRequestBody,
  ChatHandler,
  Fault,
  RecordedRequest,
  ScriptStep,
  ScriptToolCall,
} from "./types.js";
