import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { probeNats, probePostgres } from "./server-probes.js";
import { ServerUnreachable, START_SERVERS_COMMAND, startupFailure, waitForServers } from "./startup.js";

const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const NATS_SERVER = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";

const connections = {
  natsUrl: "nats://127.0.0.1:4222",
  databaseUrl: "postgres://app:secret@db.internal:5432/runtime",
};

describe("startupFailure", () => {
  it("names the server that could not be reached, its URL and what to start", () => {
    const nats = Object.assign(new Error("connection refused"), { name: "ConnectionError" });
    expect(startupFailure(nats, connections)).toBe(
      `cannot reach NATS at nats://127.0.0.1:4222 (connection refused). Start the servers with \`${START_SERVERS_COMMAND}\`, or set NATS_URL.`,
    );
    const postgres = Object.assign(new Error("connect ECONNREFUSED 10.0.0.5:5432"), { code: "ECONNREFUSED" });
    const line = startupFailure(postgres, connections);
    expect(line).toMatch(/^cannot reach Postgres at postgres:\/\/app@db\.internal:5432\/runtime/);
    expect(line).not.toMatch(/secret/);
    const missing = Object.assign(new Error('database "runtime" does not exist'), { code: "3D000" });
    expect(startupFailure(missing, connections)).toMatch(/refused the connection: database "runtime"/);
    expect(startupFailure(new Error("boom"), connections)).toBe("could not start: boom");
  });
});

describe("waitForServers", () => {
  const logger = createLogger({ service: "startup-test", level: "silent" });
  const freePort = () =>
    new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port;
        server.close(() => resolve(port));
      });
    });

  it("says what it waits for, waits while NATS comes up late, and says when it answers", async () => {
    const port = await freePort();
    const lines: string[] = [];
    let nats: ChildProcess | undefined;
    const later = setTimeout(() => {
      nats = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    }, 1200);
    try {
      const started = Date.now();
      await waitForServers(
        logger,
        { natsUrl: `nats://127.0.0.1:${port}`, databaseUrl: DATABASE_URL },
        { timeoutMs: 20_000, write: (line) => lines.push(line), maxDelayMs: 500 },
      );
      expect(Date.now() - started).toBeGreaterThan(1000);
      expect(lines[0]).toBe(
        `waiting for NATS at nats://127.0.0.1:${port} (connection refused); start the servers with \`${START_SERVERS_COMMAND}\` — retrying for up to 20 s`,
      );
      // said once, not at every try
      expect(lines.filter((line) => line.startsWith("waiting for NATS"))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(
        new RegExp(`^NATS at nats://127\\.0\\.0\\.1:${port} answers \\(after \\d+\\.\\d s\\)$`),
      );
      // Postgres answered from the start: nothing said of it
      expect(lines.some((line) => line.includes("Postgres"))).toBe(false);
    } finally {
      clearTimeout(later);
      nats?.kill("SIGKILL");
    }
  });

  it("gives up after its time with one line naming the server, its URL and what to start", async () => {
    const port = await freePort();
    const lines: string[] = [];
    const failure = await waitForServers(
      logger,
      { natsUrl: NATS_URL, databaseUrl: `postgres://app:secret@127.0.0.1:${port}/runtime` },
      { timeoutMs: 1200, write: (line) => lines.push(line), initialDelayMs: 100 },
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ServerUnreachable);
    expect(lines).toEqual([
      expect.stringMatching(
        /^waiting for Postgres at postgres:\/\/app@127\.0\.0\.1:\d+\/runtime \(connection refused\)/,
      ),
    ]);
    const line = startupFailure(failure, { natsUrl: NATS_URL });
    expect(line).toMatch(
      /^cannot reach Postgres at postgres:\/\/app@127\.0\.0\.1:\d+\/runtime \(waited 1 s: connection refused\)\. Start the servers with `docker compose up -d nats postgres redis`, or set DATABASE_URL\.$/,
    );
    expect(line).not.toMatch(/secret|\n/);
  });

  it("takes a Postgres that answers, even one refusing this database or user, as up (the service's start says why)", async () => {
    expect(await probePostgres(DATABASE_URL)).toBeUndefined();
    const url = new URL(DATABASE_URL);
    url.pathname = "/no_such_database_here";
    expect(await probePostgres(url.toString())).toBeUndefined();
    expect(await probeNats(NATS_URL)).toBeUndefined();
    // a server that is not NATS
    const other = createServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const port = (other.address() as { port: number }).port;
    expect(await probeNats(`nats://127.0.0.1:${port}`)).toBe("not a NATS server");
    expect(await probePostgres(`postgres://postgres@127.0.0.1:${port}/x`)).toBe("not a Postgres server");
    other.close();
  });
});
