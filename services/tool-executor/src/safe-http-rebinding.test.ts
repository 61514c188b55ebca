import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

/**
 * DNS rebinding: a name that resolves to an allowed address when it is checked and to a private
 * one a moment later. The resolver here plays that attacker's DNS (answers change on every
 * question); the request must connect to the address that was checked and never ask again.
 */
const answers: string[] = [];
const asked: string[] = [];
vi.mock("node:dns/promises", () => ({
  lookup: async (hostname: string) => {
    asked.push(hostname);
    const address = answers.shift() ?? "10.0.0.1";
    return [{ address, family: 4 }];
  },
}));

const { allowListOf, BlockedAddressError, safeRequest } = await import("./safe-http.js");

let server: Server;
let port = 0;
const reached: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    reached.push(`${request.headers.host}${request.url}`);
    response.end("checked address");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => server?.close());

describe("safe HTTP against DNS rebinding", () => {
  it("connects to the address it checked and never resolves the name again", async () => {
    answers.push("127.0.0.1", "10.0.0.1", "169.254.169.254");
    asked.length = 0;
    const response = await safeRequest(`http://rebind.example:${port}/data`, {
      timeoutMs: 2000,
      maxBytes: 1000,
      allow: allowListOf(["127.0.0.1/32"]),
    });
    expect(response).toMatchObject({ status: 200, body: "checked address" });
    expect(asked).toEqual(["rebind.example"]);
    expect(reached).toEqual([`rebind.example:${port}/data`]);
  });

  it("refuses a name whose first answer is already private", async () => {
    answers.length = 0;
    answers.push("10.0.0.1");
    await expect(
      safeRequest(`http://rebind.example:${port}/data`, {
        timeoutMs: 2000,
        maxBytes: 1000,
        allow: allowListOf([]),
      }),
    ).rejects.toBeInstanceOf(BlockedAddressError);
  });
});
