/**
 * The private Postgres cluster of the fault suites (test/support/private-postgres.ts): it starts,
 * a crash (`pg_ctl stop -m immediate`) drops every connection and loses the transaction in flight,
 * data committed before the crash is there after the restart (WAL replay), and close() stops the
 * server and removes its directory.
 */
import { existsSync } from "node:fs";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";

let cluster: PrivatePostgres | undefined;

afterAll(async () => {
  await cluster?.close();
});

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined); // the crash ends the connection
  await client.connect();
  return client;
}

describe("private Postgres", () => {
  it("keeps committed data across an immediate stop and loses what was in flight", async () => {
    cluster = await startPrivatePostgres({ label: "private-postgres-test", database: "crashme" });
    expect(cluster.running()).toBe(true);
    const before = await connect(cluster.url);
    const settings = await before.query<{ fsync: string; db: string }>(
      "SELECT current_setting('fsync') AS fsync, current_database() AS db",
    );
    expect(settings.rows[0]).toEqual({ fsync: "on", db: "crashme" });
    await before.query("CREATE TABLE facts (id int PRIMARY KEY, note text NOT NULL)");
    await before.query("INSERT INTO facts SELECT n, 'committed ' || n FROM generate_series(1, 500) AS n");
    // a transaction still open when the server goes down
    const inFlight = await connect(cluster.url);
    await inFlight.query("BEGIN");
    await inFlight.query("INSERT INTO facts VALUES (1000, 'in flight')");

    await cluster.crash();
    expect(cluster.running()).toBe(false);
    await expect(before.query("SELECT 1")).rejects.toThrow();
    await expect(connect(cluster.url)).rejects.toThrow();
    await cluster.start();
    expect(cluster.log()).toMatch(/not properly shut down; automatic recovery in progress/);

    const after = await connect(cluster.url);
    const rows = await after.query<{ n: number; lost: number }>(
      "SELECT count(*)::int AS n, count(*) FILTER (WHERE id = 1000)::int AS lost FROM facts",
    );
    expect(rows.rows[0]).toEqual({ n: 500, lost: 0 });
    await after.end();
    await Promise.allSettled([before.end(), inFlight.end()]);

    const dir = cluster.dir;
    await cluster.close();
    expect(existsSync(dir)).toBe(false);
    await expect(connect(cluster.url)).rejects.toThrow();
    cluster = undefined;
  }, 120_000);
});
