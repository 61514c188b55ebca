/**
 * The replay's workload: tenants, users, long-term documents, the questions the grading
 * provider knows, and the tasks in the order they are sent. Made by `generate.ts` from a seed
 * and checked in as `workload.json`, so every replay sends exactly the same traffic.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GradedQuestion } from "@agent-runtime/testkit";

export type TaskKind = "faq" | "thread" | "simple" | "hard" | "lookup" | "webhook" | "batch";

export interface ReplayTask {
  id: string;
  kind: TaskKind;
  tenant: string;
  user: string;
  agent: string;
  /** The question's key (`[[q:<key>]]` in the input). */
  question: string;
  input: string;
  /** Turns of one thread share it and are sent in order. */
  thread?: string;
  temperature?: number;
  seed?: number;
  /** For batch tasks: the CloudEvent's type and data. */
  event?: { type: string; data: unknown };
}

export interface ReplayDocument {
  tenant: string;
  user: string;
  id: string;
  text: string;
}

export interface Workload {
  seed: number;
  tenants: string[];
  users: number;
  documents: ReplayDocument[];
  questions: GradedQuestion[];
  tasks: ReplayTask[];
  /** The long knowledge base the support agent's system prompt carries. */
  knowledgeBase: string;
}

export const WORKLOAD_PATH = join(dirname(fileURLToPath(import.meta.url)), "workload.json");

export function loadWorkload(path = WORKLOAD_PATH): Workload {
  return JSON.parse(readFileSync(path, "utf8")) as Workload;
}

/** What the lookup tools answer (the tool server and the generator agree on it). */
export function orderStatus(order: string): string {
  let hash = 0;
  for (const char of order) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const states = ["SHIPPED", "PACKED", "DELAYED", "DELIVERED"];
  return `order ${order}: ${states[hash % states.length]} (tracking TRK-${(hash % 90000) + 10000})`;
}

export function stockLevel(sku: string): string {
  let hash = 7;
  for (const char of sku) hash = (hash * 17 + char.charCodeAt(0)) >>> 0;
  return `sku ${sku}: ${hash % 500} units (lot LOT-${(hash % 9000) + 1000})`;
}
