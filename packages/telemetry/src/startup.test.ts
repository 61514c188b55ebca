import { describe, expect, it } from "vitest";
import { START_SERVERS_COMMAND, startupFailure } from "./startup.js";

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
