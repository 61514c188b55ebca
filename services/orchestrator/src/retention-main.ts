/**
 * One retention pass over the run journal, then exit (a Kubernetes CronJob, or cron):
 * drops the weekly partitions of `runs` and `run_steps` that ended more than RUN_RETENTION_DAYS
 * ago, makes the weeks ahead, and deletes event claims older than EVENT_CLAIM_RETENTION_DAYS
 * (longer than the EVENTS stream keeps an event, so no redelivery can start a second run).
 *
 *   node services/orchestrator/dist/retention-main.js
 */
import { ConfigError, parseServiceEnv } from "@agent-runtime/config";
import { createPool } from "@agent-runtime/stores";
import { createLogger } from "@agent-runtime/telemetry";
import { z } from "zod";
import { retentionStatements } from "./partitions.js";

const RetentionEnv = {
  RUN_RETENTION_DAYS: z.coerce.number().int().min(1).default(90),
  // the EVENTS stream keeps an event 7 days: a claim must outlive it
  EVENT_CLAIM_RETENTION_DAYS: z.coerce.number().int().min(8).default(30),
};

const logger = createLogger({ service: "orchestrator-retention" });
let env: ReturnType<typeof parseServiceEnv<typeof RetentionEnv>>;
try {
  env = parseServiceEnv(RetentionEnv, process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  logger.fatal(error.message);
  process.exit(1);
}
const pool = await createPool({
  url: env.connections.databaseUrl,
  schema: env.connections.databaseSchema,
  applicationName: "orchestrator-retention",
  max: 1,
});
try {
  const results: Record<string, unknown> = {};
  for (const statement of retentionStatements({
    runDays: env.RUN_RETENTION_DAYS,
    eventClaimDays: env.EVENT_CLAIM_RETENTION_DAYS,
  })) {
    const result = await pool.query(statement);
    if (statement.includes("ar_drop_expired")) results.partitionsDropped = result.rows[0]?.dropped;
    if (statement.startsWith("DELETE")) results.eventClaimsDeleted = result.rowCount;
  }
  logger.info(
    {
      ...results,
      runRetentionDays: env.RUN_RETENTION_DAYS,
      eventClaimRetentionDays: env.EVENT_CLAIM_RETENTION_DAYS,
    },
    "retention pass done",
  );
} catch (error) {
  logger.error({ err: error }, "retention pass failed");
  process.exitCode = 1;
} finally {
  await pool.end();
}
