import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { formatZodError } from "@agent-runtime/contracts";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";

/** A configuration problem; the message names the file and the bad path. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Replaces `${NAME}` and `${NAME:-default}` with environment values. */
export function interpolateEnv(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_match, name: string, fallback?: string) => {
      const value = env[name];
      if (value !== undefined && value !== "") return value;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`config refers to environment variable ${name}, which is not set`);
    },
  );
}

/** Reads a YAML or JSON config file into plain data (not yet validated). */
export function readConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  text = interpolateEnv(text, env);
  try {
    if (extname(path).toLowerCase() === ".json") return JSON.parse(text);
    return parseYaml(text) ?? {};
  } catch (error) {
    throw new ConfigError(
      `config file ${path} is not valid ${extname(path) === ".json" ? "JSON" : "YAML"}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** Validates data against a schema, throwing a ConfigError that names each bad path. */
export function parseConfig<T extends z.ZodType>(schema: T, raw: unknown, source: string): z.infer<T> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`invalid config in ${source}: ${formatZodError(result.error)}`, {
      cause: result.error,
    });
  }
  return result.data;
}
