import { Streams, Subjects } from "@agent-runtime/contracts";
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";

const SECOND_NS = 1_000_000_000;
const HOUR_NS = 3600 * SECOND_NS;
const DAY_NS = 24 * HOUR_NS;

export type StreamName = (typeof Streams)[keyof typeof Streams];

/** The runtime's JetStream streams (unprefixed names and subjects). */
export const StreamDefinitions: Record<StreamName, Partial<StreamConfig> & { subjects: string[] }> = {
  [Streams.runs]: {
    subjects: ["runs.>"],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    max_age: DAY_NS,
    duplicate_window: 2 * 60 * SECOND_NS,
  },
  [Streams.runEvents]: {
    subjects: [Subjects.runEventsAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: HOUR_NS,
    discard: DiscardPolicy.Old,
  },
  [Streams.events]: {
    subjects: [Subjects.eventsAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: 7 * DAY_NS,
    duplicate_window: 60 * 60 * SECOND_NS,
  },
  [Streams.memoryJobs]: {
    subjects: [Subjects.memoryJobs],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    max_age: DAY_NS,
    duplicate_window: 2 * 60 * SECOND_NS,
  },
  [Streams.threadTurns]: {
    // a turn stays until memory has stored it in its thread (kept a week if memory is down)
    subjects: [Subjects.threadTurnsAll],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    max_age: 7 * DAY_NS,
    duplicate_window: 2 * 60 * SECOND_NS,
    // a read of a thread asks for its waiting turns directly (JetStream direct get)
    allow_direct: true,
  },
  [Streams.usage]: {
    subjects: [Subjects.usageAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: 30 * DAY_NS,
    duplicate_window: 2 * 60 * SECOND_NS,
  },
  [Streams.deadLetters]: {
    subjects: [Subjects.deadLetterAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: 14 * DAY_NS,
    // dead letters are deduplicated by origin stream sequence (a redelivery after a lost ack)
    duplicate_window: 10 * 60 * SECOND_NS,
  },
};
