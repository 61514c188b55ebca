/**
 * Counters the ledger benchmark reads around each phase: CPU time of
 * processes from /proc, Postgres database statistics, NATS /varz and Redis
 * INFO commandstats.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import type pg from "pg";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CLOCK_TICKS_PER_SECOND = 100; // `getconf CLK_TCK` on Linux

interface ProcStat {
  comm: string;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time, in clock ticks since boot. */
  startTicks: number;
}

function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined; // exited
  }
  // "pid (comm) state ppid …": comm may hold spaces, so split after the last ")"
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" ");
  return {
    comm: text.slice(text.indexOf("(") + 1, close),
    ppid: Number(fields[1]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    startTicks: Number(fields[19]),
  };
}

function readCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

function uptimeTicks(): number {
  return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * CLOCK_TICKS_PER_SECOND;
}

/** Busy (non-idle) CPU time of the whole machine in ms, from the first line of /proc/stat. */
export function machineBusyMs(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest times are inside user already)
  const busy = fields
    .slice(0, 8)
    .reduce((sum, value, index) => (index === 3 || index === 4 ? sum : sum + value), 0);
  return (busy * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Names the group a process belongs to, or undefined for processes not of interest. */
export type Classify = (pid: number, stat: ProcStat, commandLine: () => string) => string | undefined;

export interface GroupCpu {
  cpuMs: number;
  processes: number;
}

/**
 * CPU time per group of processes over a window. Every `intervalMs` it lists
 * /proc and reads utime+stime of each process of interest, so processes that
 * come and go (Postgres backends) are counted: one born inside the window
 * counts from zero, one that exits keeps its last sample (up to one interval
 * of its time is lost).
 */
export class CpuSampler {
  private readonly groups = new Map<number, string | undefined>();
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private windowStartTicks = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly classify: Classify,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.first.clear();
    this.last.clear();
    this.windowStartTicks = uptimeTicks();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), this.intervalMs);
  }

  stop(): Map<string, GroupCpu> {
    clearInterval(this.timer);
    this.sample(false);
    const totals = new Map<string, GroupCpu>();
    for (const [pid, ticks] of this.last) {
      const group = this.groups.get(pid)!;
      const total = totals.get(group) ?? { cpuMs: 0, processes: 0 };
      total.cpuMs += ((ticks - this.first.get(pid)!) * 1000) / CLOCK_TICKS_PER_SECOND;
      total.processes += 1;
      totals.set(group, total);
    }
    return totals;
  }

  private sample(atStart: boolean): void {
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid <= 0) continue;
      if (this.groups.has(pid) && this.groups.get(pid) === undefined) continue;
      const stat = readProcStat(pid);
      if (!stat) continue;
      if (!this.groups.has(pid))
        this.groups.set(
          pid,
          this.classify(pid, stat, () => readCommandLine(pid)),
        );
      if (this.groups.get(pid) === undefined) continue;
      if (!this.first.has(pid)) {
        const bornInside = !atStart && stat.startTicks >= this.windowStartTicks - 1;
        this.first.set(pid, bornInside ? 0 : stat.cpuTicks);
      }
      this.last.set(pid, stat.cpuTicks);
    }
  }
}

export interface DatabaseCounters {
  transactions: number;
  rowsReturned: number;
  rowsFetched: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsDeleted: number;
}

/** One database's row of pg_stat_database (read from a connection to another database, so reads add nothing). */
export async function readDatabaseCounters(client: pg.Client, database: string): Promise<DatabaseCounters> {
  await client.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await client.query<Record<keyof DatabaseCounters, string>>(
    `SELECT xact_commit + xact_rollback AS "transactions", tup_returned AS "rowsReturned",
            tup_fetched AS "rowsFetched", tup_inserted AS "rowsInserted",
            tup_updated AS "rowsUpdated", tup_deleted AS "rowsDeleted"
       FROM pg_stat_database WHERE datname = $1`,
    [database],
  );
  const row = rows[0];
  if (!row) throw new Error(`no pg_stat_database row for ${database}`);
  return Object.fromEntries(
    Object.entries(row).map(([key, value]) => [key, Number(value)]),
  ) as unknown as DatabaseCounters;
}

/**
 * Database counters once every backend has flushed: a backend that is idle
 * flushes its pending statistics up to 10 s late, so this waits 11 s and then
 * until two reads 1 s apart agree.
 */
export async function settledDatabaseCounters(
  client: pg.Client,
  database: string,
): Promise<DatabaseCounters> {
  await sleep(11_000);
  let previous = await readDatabaseCounters(client, database);
  for (let attempt = 0; attempt < 10; attempt++) {
    await sleep(1000);
    const current = await readDatabaseCounters(client, database);
    if (JSON.stringify(current) === JSON.stringify(previous)) return current;
    previous = current;
  }
  return previous;
}

export interface NatsCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  jetStreamApiCalls: number;
}

/** Server-wide message and byte counters from the monitoring port's /varz. */
export async function readNatsCounters(monitorUrl: string): Promise<NatsCounters> {
  const varz = (await (await fetch(`${monitorUrl}/varz`)).json()) as {
    in_msgs: number;
    out_msgs: number;
    in_bytes: number;
    out_bytes: number;
    jetstream?: { stats?: { api?: { total?: number } } };
  };
  return {
    messagesIn: varz.in_msgs,
    messagesOut: varz.out_msgs,
    bytesIn: varz.in_bytes,
    bytesOut: varz.out_bytes,
    jetStreamApiCalls: varz.jetstream?.stats?.api?.total ?? 0,
  };
}

/** Waits until the server has seen no new message for `quietMs` (the stack's after-work is done), at most `maxMs`. */
export async function waitForQuiet(monitorUrl: string, quietMs = 750, maxMs = 10_000): Promise<void> {
  const until = Date.now() + maxMs;
  let seen = (await readNatsCounters(monitorUrl)).messagesIn;
  let quietSince = Date.now();
  while (Date.now() < until && Date.now() - quietSince < quietMs) {
    await sleep(125);
    const now = (await readNatsCounters(monitorUrl)).messagesIn;
    if (now !== seen) {
      seen = now;
      quietSince = Date.now();
    }
  }
}

/** Calls per command from INFO commandstats. */
export async function readRedisCommands(redis: Redis): Promise<Map<string, number>> {
  const text = await redis.info("commandstats");
  const calls = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

/**
 * Commands run between two reads, most frequent first. A read is counted
 * after it answers, so the earlier read's own INFO is taken out.
 */
export function redisCommandsBetween(
  before: Map<string, number>,
  after: Map<string, number>,
): Map<string, number> {
  const calls = new Map<string, number>();
  for (const [command, count] of after) {
    const delta = count - (before.get(command) ?? 0) - (command === "info" ? 1 : 0);
    if (delta > 0) calls.set(command, delta);
  }
  return new Map([...calls].sort((a, b) => b[1] - a[1]));
}

/** Differences of two numeric records with the same keys. */
export function difference<T extends object>(after: T, before: T): T {
  return Object.fromEntries(
    Object.entries(after).map(([key, value]) => [
      key,
      (value as number) - (before as Record<string, number>)[key]!,
    ]),
  ) as T;
}
