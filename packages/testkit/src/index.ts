export type { EmbeddingOptions } from "./embedding.js";
export { cosineSimilarity, estimateTokens, fakeEmbedding } from "./embedding.js";
export type { FakeOpenAI, FakeOpenAIOptions } from "./fake-openai.js";
export { contentText, echoHandler, startFakeOpenAI, textStep, toolCallStep } from "./fake-openai.js";
export type {
  ChatCompletionRequestBody,
  ChatHandler,
  Fault,
  RecordedRequest,
  ScriptStep,
  ScriptToolCall,
} from "./types.js";
