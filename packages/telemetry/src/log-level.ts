import { type LevelWithSilent, levels } from "pino";
import { InvalidLogLevelError } from "./errors.js";

export type LogLevel = LevelWithSilent;

const LOG_LEVELS: readonly LogLevel[] = [...Object.keys(levels.values), "silent"] as LogLevel[];

/**
 * Reads a log level (case-insensitive, trimmed); empty or missing gives the
 * fallback. Throws `InvalidLogLevelError` for a name pino does not know, so a
 * typo in `LOG_LEVEL` fails loudly at start-up instead of deep inside pino.
 */
export function parseLogLevel(value: string | undefined, fallback: LogLevel = "info"): LogLevel {
  const level = value?.trim().toLowerCase();
  if (!level) return fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new InvalidLogLevelError(level, LOG_LEVELS);
  return level as LogLevel;
}
