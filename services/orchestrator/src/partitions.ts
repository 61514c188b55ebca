/**
 * Time partitioning of the run journal: `runs` by `created_at` and `run_steps` by their run's
 * `created_at` (`run_created_at`), one partition per week, a DEFAULT partition for rows outside
 * the weeks made so far (a skewed clock, a backfill), and retention by dropping whole weeks.
 *
 * Uniqueness: a partitioned table's keys must hold the partition key, so the run's key is
 * (id, created_at) and a step's (run_id, step, run_created_at). A run keeps the `created_at` of its
 * first row: every write of a run looks it up (`runCreatedAt`), so a run written again later (a
 * retried request after JetStream's duplicate window) lands on the same row, never a second one.
 *
 * `event_runs` (an event's claimed run) is not partitioned: its key is the event, and a claim must
 * outlive the EVENTS stream's 7 days so that no redelivery starts a second run; it is trimmed by
 * `created_at` instead (`trimEventClaims`).
 *
 * Migrations are idempotent; an existing unpartitioned table is converted in place on the first
 * start with this code (its rows copied under the migration lock: for a large table, run that
 * start alone, or copy offline first — docs/postgres.md).
 */

/** How many weeks of partitions exist ahead of now after every start and every retention pass. */
export const WEEKS_AHEAD = 2;

/** The run's `created_at` for a write of run `idSql`: the first row's, else `fallbackSql`. */
export const runCreatedAt = (idSql: string, fallbackSql: string) =>
  `COALESCE((SELECT r.created_at FROM runs r WHERE r.id = ${idSql} LIMIT 1), ${fallbackSql})`;

const ENSURE_PARTITIONS = `
CREATE OR REPLACE FUNCTION ar_ensure_run_partitions(weeks_ahead integer, weeks_back integer DEFAULT 0) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  schema_name text := current_schema();
  week timestamptz;
  upper_bound timestamptz;
  parent text;
  key_column text;
  part text;
BEGIN
  FOREACH parent IN ARRAY ARRAY['runs', 'run_steps'] LOOP
    -- a table not converted yet (first start with this code) gets its weeks when it is
    CONTINUE WHEN (SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = schema_name AND c.relname = parent) IS DISTINCT FROM 'p';
    key_column := CASE parent WHEN 'runs' THEN 'created_at' ELSE 'run_created_at' END;
    FOR offset_weeks IN -weeks_back..weeks_ahead LOOP
      week := date_trunc('week', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(weeks => offset_weeks);
      upper_bound := week + interval '1 week';
      part := parent || '_w' || to_char(week AT TIME ZONE 'UTC', 'YYYYMMDD');
      CONTINUE WHEN to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL;
      BEGIN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
          schema_name, part, schema_name, parent, week, upper_bound);
      EXCEPTION WHEN check_violation THEN
        -- rows of that week wait in the DEFAULT partition: move them into the new week, then attach it
        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS)', schema_name, part, schema_name, parent);
        EXECUTE format(
          'WITH moved AS (DELETE FROM %I.%I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I.%I SELECT * FROM moved',
          schema_name, parent || '_default', key_column, week, key_column, upper_bound, schema_name, part);
        EXECUTE format('ALTER TABLE %I.%I ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
          schema_name, parent, schema_name, part, week, upper_bound);
      END;
    END LOOP;
  END LOOP;
END
$fn$`;

/** Drops the weeks that ended before `horizon` ago (steps first) and trims the DEFAULT partitions. */
const DROP_EXPIRED = `
CREATE OR REPLACE FUNCTION ar_drop_expired_run_partitions(horizon interval) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  schema_name text := current_schema();
  cutoff timestamptz := now() - horizon;
  dropped integer := 0;
  partition record;
BEGIN
  FOR partition IN
    SELECT child.relname AS name, parent.relname AS parent_name,
           (regexp_match(pg_get_expr(child.relpartbound, child.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper_bound
      FROM pg_inherits i
      JOIN pg_class child ON child.oid = i.inhrelid
      JOIN pg_class parent ON parent.oid = i.inhparent
      JOIN pg_namespace n ON n.oid = parent.relnamespace
     WHERE n.nspname = schema_name AND parent.relname IN ('runs', 'run_steps')
       AND pg_get_expr(child.relpartbound, child.oid) <> 'DEFAULT'
     ORDER BY parent.relname = 'runs', child.relname
  LOOP
    IF partition.upper_bound <= cutoff THEN
      EXECUTE format('DROP TABLE %I.%I', schema_name, partition.name);
      dropped := dropped + 1;
    END IF;
  END LOOP;
  EXECUTE format('DELETE FROM %I.run_steps_default WHERE run_created_at < %L', schema_name, cutoff);
  EXECUTE format('DELETE FROM %I.runs_default WHERE created_at < %L', schema_name, cutoff);
  RETURN dropped;
END
$fn$`;

/** Converts `runs` (and then `run_steps`) from a plain table into a partitioned one, once. */
const PARTITION_RUNS = `
DO $do$
BEGIN
  IF (SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relname = 'runs') = 'r' THEN
    ALTER TABLE run_steps DROP CONSTRAINT IF EXISTS run_steps_run_id_fkey;
    ALTER TABLE runs RENAME TO runs_unpartitioned;
    CREATE TABLE runs (
      LIKE runs_unpartitioned INCLUDING DEFAULTS,
      CONSTRAINT runs_partitioned_pkey PRIMARY KEY (id, created_at)
    ) PARTITION BY RANGE (created_at);
    CREATE TABLE runs_default PARTITION OF runs DEFAULT;
    -- the weeks the rows are from (half a year at most; older rows go to the DEFAULT partition)
    PERFORM ar_ensure_run_partitions(${WEEKS_AHEAD}, LEAST(26, GREATEST(0,
      ceil(extract(epoch FROM now() - (SELECT min(created_at) FROM runs_unpartitioned)) / 604800)::integer)));
    INSERT INTO runs SELECT * FROM runs_unpartitioned;
    DROP TABLE runs_unpartitioned;
  END IF;
END
$do$`;

const PARTITION_STEPS = `
DO $do$
BEGIN
  IF (SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relname = 'run_steps') = 'r' THEN
    ALTER TABLE run_steps RENAME TO run_steps_unpartitioned;
    CREATE TABLE run_steps (
      LIKE run_steps_unpartitioned INCLUDING DEFAULTS,
      run_created_at timestamptz NOT NULL,
      CONSTRAINT run_steps_partitioned_pkey PRIMARY KEY (run_id, step, run_created_at)
    ) PARTITION BY RANGE (run_created_at);
    CREATE TABLE run_steps_default PARTITION OF run_steps DEFAULT;
    PERFORM ar_ensure_run_partitions(${WEEKS_AHEAD}, LEAST(26, GREATEST(0,
      ceil(extract(epoch FROM now() - (SELECT min(created_at) FROM run_steps_unpartitioned)) / 604800)::integer)));
    INSERT INTO run_steps
      SELECT s.*, COALESCE((SELECT r.created_at FROM runs r WHERE r.id = s.run_id LIMIT 1), s.created_at)
        FROM run_steps_unpartitioned s;
    DROP TABLE run_steps_unpartitioned;
  END IF;
END
$do$`;

/** Statements appended to the orchestrator's migrations (after every plain CREATE and ALTER). */
export const PARTITION_MIGRATIONS = [
  ENSURE_PARTITIONS,
  DROP_EXPIRED,
  PARTITION_RUNS,
  // steps after runs: the copy reads each step's run
  PARTITION_STEPS,
  `SELECT ar_ensure_run_partitions(${WEEKS_AHEAD})`,
  // the hot queries' indexes (on the partitioned tables: one per partition)
  "CREATE INDEX IF NOT EXISTS runs_tenant_created ON runs (tenant, created_at DESC)",
  "CREATE INDEX IF NOT EXISTS runs_tenant_created_id ON runs (tenant, created_at DESC, id DESC)",
  "CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL",
  "CREATE INDEX IF NOT EXISTS runs_thread ON runs (tenant, thread_id)",
  "CREATE INDEX IF NOT EXISTS runs_tenant_status ON runs (tenant, status) WHERE status IN ('queued', 'running')",
  "CREATE INDEX IF NOT EXISTS run_steps_run ON run_steps (run_id, step)",
  "CREATE INDEX IF NOT EXISTS event_runs_created ON event_runs (created_at)",
];

/** SQL of one retention pass: drop expired weeks, keep weeks ahead, trim old event claims. */
export function retentionStatements(options: { runDays: number; eventClaimDays: number }): string[] {
  return [
    `SELECT ar_drop_expired_run_partitions(make_interval(days => ${Math.floor(options.runDays)})) AS dropped`,
    `SELECT ar_ensure_run_partitions(${WEEKS_AHEAD})`,
    `DELETE FROM event_runs WHERE created_at < now() - make_interval(days => ${Math.floor(options.eventClaimDays)})`,
  ];
}
