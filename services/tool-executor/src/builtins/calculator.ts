import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";

/** A safe arithmetic evaluator (recursive descent; no eval). */
export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

const FUNCTIONS: Record<string, (...args: number[]) => number> = {
  sqrt: Math.sqrt,
  abs: Math.abs,
  round: (x, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits,
  floor: Math.floor,
  ceil: Math.ceil,
  min: Math.min,
  max: Math.max,
  log: Math.log,
  log10: Math.log10,
  exp: Math.exp,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
};
const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E };

export function evaluate(expression: string): number {
  if (expression.length > 1000) throw new ExpressionError("expression is longer than 1000 characters");
  const tokens =
    expression.match(/\d+\.?\d*(?:e[+-]?\d+)?|\.\d+|[A-Za-z_][A-Za-z0-9_]*|\*\*|[-+*/%^(),]|\S/g) ?? [];
  let position = 0;
  const peek = () => tokens[position];
  const take = (expected?: string) => {
    const token = tokens[position];
    if (expected !== undefined && token !== expected) {
      throw new ExpressionError(
        `expected "${expected}" but found ${token === undefined ? "the end" : `"${token}"`}`,
      );
    }
    position++;
    return token;
  };

  const primary = (): number => {
    const token = peek();
    if (token === undefined) throw new ExpressionError("unexpected end of expression");
    if (token === "(") {
      take("(");
      const value = sum();
      take(")");
      return value;
    }
    if (/^(\d|\.\d)/.test(token)) {
      take();
      return Number(token);
    }
    if (/^[A-Za-z_]/.test(token)) {
      take();
      const name = token.toLowerCase();
      if (peek() === "(") {
        const fn = FUNCTIONS[name];
        if (!fn) throw new ExpressionError(`unknown function "${token}"`);
        take("(");
        const args = [sum()];
        while (peek() === ",") {
          take(",");
          args.push(sum());
        }
        take(")");
        return fn(...args);
      }
      const constant = CONSTANTS[name];
      if (constant === undefined) throw new ExpressionError(`unknown name "${token}"`);
      return constant;
    }
    throw new ExpressionError(`unexpected "${token}"`);
  };
  const unary = (): number => {
    if (peek() === "-") {
      take();
      return -unary();
    }
    if (peek() === "+") {
      take();
      return unary();
    }
    return power();
  };
  const power = (): number => {
    const base = primary();
    if (peek() === "^" || peek() === "**") {
      take();
      return base ** unary();
    }
    return base;
  };
  const product = (): number => {
    let value = unary();
    for (let op = peek(); op === "*" || op === "/" || op === "%"; op = peek()) {
      take();
      const right = unary();
      if ((op === "/" || op === "%") && right === 0) throw new ExpressionError("division by zero");
      value = op === "*" ? value * right : op === "/" ? value / right : value % right;
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    for (let op = peek(); op === "+" || op === "-"; op = peek()) {
      take();
      const right = product();
      value = op === "+" ? value + right : value - right;
    }
    return value;
  };

  if (tokens.length === 0) throw new ExpressionError("empty expression");
  const value = sum();
  if (position < tokens.length) throw new ExpressionError(`unexpected "${tokens[position]}"`);
  if (!Number.isFinite(value)) throw new ExpressionError("result is not a finite number");
  return value;
}

export const calculator = defineTool({
  name: "calculator",
  description:
    "Evaluates an arithmetic expression exactly: + - * / % ^, parentheses, sqrt, abs, round, min, max, log, exp, sin, cos, tan, pi, e.",
  input: z.object({ expression: z.string().min(1).max(1000).describe("for example (17 + 4) * 3") }),
  output: z.object({ expression: z.string(), result: z.number() }),
  options: { timeoutMs: 1000, cacheTtlSeconds: 3600, maxConcurrency: 256, personal: false },
  handler: ({ expression }) => ({ expression, result: Number(evaluate(expression).toPrecision(15)) }),
});
