/**
 * A private Postgres cluster a fault test can crash and start again: `initdb` into a temporary
 * directory (trust auth, fsync on as in production), a free port on 127.0.0.1, its unix socket in
 * that directory, started with `pg_ctl -w start`, one database created. `crash()` is
 * `pg_ctl stop -m immediate` (no shutdown checkpoint: every connection dropped, transactions in
 * flight lost, the next start replays the WAL); `start()` brings it back at the same address.
 *
 * Postgres refuses to run as root: when the test runs as root, every Postgres command runs as the
 * `postgres` system user (`runuser -u postgres --`) and the directory is given to that user.
 * `close()` stops the cluster and removes its directory; a process exit or a SIGINT/SIGTERM that
 * skips `close()` still stops it (synchronously) and removes the directory.
 */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./processes.js";

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url: string;
  port: number;
  database: string;
  /** The temporary directory: `data/` (the cluster), `postgres.log`, the unix socket. */
  dir: string;
  /** Whether the server answers now (`pg_ctl status`). */
  running(): boolean;
  /** `pg_ctl stop -m immediate`: a crash, no shutdown checkpoint. */
  crash(): Promise<void>;
  /** `pg_ctl stop -m fast`: a clean shutdown. */
  stop(): Promise<void>;
  /** `pg_ctl -w start` on the same port and data (crash recovery first after `crash()`). */
  start(): Promise<void>;
  /** The server log, whole (it holds start-ups, shutdowns and errors only). */
  log(): string;
  /** Stops the cluster (immediately) and removes its directory, unless `keep`: then stopped cleanly and left on disk. */
  close(options?: { keep?: boolean }): Promise<void>;
}

/** The newest Postgres server binaries of the machine (Debian keeps them per version). */
export function postgresBinDir(): string {
  const fromEnv = process.env.POSTGRES_BIN_DIR;
  if (fromEnv) return fromEnv;
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((name) => /^\d+$/.test(name) && existsSync(join(base, name, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(
      `no Postgres server binaries under ${base} (set POSTGRES_BIN_DIR to the directory of initdb)`,
    );
  return join(base, versions[0]!, "bin");
}

const asRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** The command line that runs a Postgres binary as a user Postgres accepts. */
function asServerUser(binary: string, args: string[]): { command: string; args: string[] } {
  return asRoot
    ? { command: "runuser", args: ["-u", "postgres", "--", binary, ...args] }
    : { command: binary, args };
}

/** Runs a Postgres binary without blocking the event loop (the test's clients and servers keep going). */
function run(binary: string, args: string[], timeoutMs: number): Promise<void> {
  const { command, args: full } = asServerUser(binary, args);
  return new Promise((resolve, reject) => {
    execFile(
      command,
      full,
      { encoding: "utf8", timeout: timeoutMs, cwd: tmpdir() },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(`${binary} ${args.join(" ")}: ${error.message}\n${(stderr + stdout).slice(-3000)}`),
          );
        else resolve();
      },
    );
  });
}

/** The same, blocking: for a process that is exiting. */
function runNow(binary: string, args: string[], timeoutMs: number): void {
  const { command, args: full } = asServerUser(binary, args);
  spawnSync(command, full, { timeout: timeoutMs, cwd: tmpdir(), stdio: "ignore" });
}

/** Creates, starts and opens a database in a private Postgres cluster. */
export async function startPrivatePostgres(
  options: {
    label?: string;
    database?: string;
    /** Connections the server accepts (every replica's pool together). */
    maxConnections?: number;
    /** More server settings (`-c name=value`), e.g. `{ wal_writer_delay: "10s" }`. */
    settings?: Record<string, string>;
  } = {},
): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const database = options.database ?? "test";
  if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new Error(`not a plain database name: ${database}`);
  const dir = mkdtempSync(join(tmpdir(), `${options.label ?? "private"}-pg-`));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  const pgCtl = join(bin, "pg_ctl");
  const serverOptions = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${dir}`,
    "-c fsync=on",
    `-c max_connections=${options.maxConnections ?? 200}`,
    ...Object.entries(options.settings ?? {}).map(([name, value]) => `-c ${name}=${value}`),
  ].join(" ");
  let closed = false;
  const stopNow = () => {
    if (existsSync(join(dataDir, "postmaster.pid")))
      runNow(pgCtl, ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30"], 40_000);
  };
  // a run that ends without close() (an uncaught error, process.exit) must not leave a server behind
  const onExit = () => {
    if (closed) return;
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", onExit);
  // nor one ended by a signal: clean up, then end as the signal would have (unless another
  // listener took the signal over)
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const start = async () => {
    await run(pgCtl, ["start", "-D", dataDir, "-w", "-t", "60", "-l", logFile, "-o", serverOptions], 70_000);
  };
  const instance: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    database,
    dir,
    running: () => {
      const { command, args } = asServerUser(pgCtl, ["status", "-D", dataDir]);
      return spawnSync(command, args, { cwd: tmpdir() }).status === 0;
    },
    crash: () => run(pgCtl, ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30"], 40_000),
    stop: () => run(pgCtl, ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "30"], 40_000),
    start,
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    close: async ({ keep = false } = {}) => {
      if (closed) return;
      closed = true;
      process.removeListener("exit", onExit);
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
      if (keep) {
        if (existsSync(join(dataDir, "postmaster.pid")))
          await run(pgCtl, ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "30"], 40_000);
        return;
      }
      stopNow();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await run(
      join(bin, "initdb"),
      ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
      120_000,
    );
    await start();
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      if (database !== "postgres") await admin.query(`CREATE DATABASE "${database}"`);
    } finally {
      await admin.end();
    }
    return instance;
  } catch (error) {
    const log = instance.log();
    await instance.close();
    throw new Error(`private Postgres did not start: ${String(error)}${log ? `\n${log.slice(-3000)}` : ""}`);
  }
}
