import { ChatMessage, CloudEvent, RunPriority, RunStatus } from "@agent-runtime/contracts";
import { z } from "zod";

export const CreateRunBody = z.object({
  agent: z.string().min(1).max(100).default("assistant"),
  input: z.union([z.string().min(1).max(1_000_000), z.array(ChatMessage).min(1).max(1000)]),
  thread_id: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,200}$/)
    .optional(),
  user: z.string().max(200).optional(),
  priority: RunPriority.default("interactive"),
  /** Answer with the finished run (up to the run timeout). */
  wait: z.boolean().default(false),
  /** Answer with the run's events as SSE (resumable through GET /v1/runs/:id/events). */
  stream: z.boolean().default(false),
  metadata: z.record(z.string(), z.string()).optional(),
});
export type CreateRunBody = z.infer<typeof CreateRunBody>;

export const ListRunsQuery = z.object({
  thread_id: z.string().max(200).optional(),
  status: RunStatus.optional(),
  agent: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** Opaque (`next_cursor` of the previous page). */
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_=-]{1,400}$/, "not a cursor from next_cursor")
    .optional(),
});

export const ThreadMessagesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.string().max(200).optional(),
});

export const EventBatch = z.array(CloudEvent).min(1, "send at least one event").max(100);
export const EventsBody = z.union([CloudEvent, EventBatch]);
