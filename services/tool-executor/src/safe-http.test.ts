import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allowListOf, BlockedAddressError, isForbiddenAddress, safeRequest } from "./safe-http.js";

let server: Server;
let base: string;
/** Requests that reached the server, by path. */
const reached: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    reached.push(request.url ?? "");
    if (request.url === "/to-metadata") {
      response.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" });
      response.end("moved");
    } else if (request.url === "/to-loopback") {
      response.writeHead(307, { location: `${base}/secret` });
      response.end("moved");
    } else response.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => server?.close());

const options = { timeoutMs: 2000, maxBytes: 10_000 };

describe("safe HTTP", () => {
  it("refuses private, loopback, link-local and metadata addresses in every spelling", async () => {
    for (const url of [
      "http://127.0.0.1/",
      "http://2130706433/", // 127.0.0.1 as one decimal number
      "http://0x7f.0.0.1/",
      "http://0177.0.0.1/", // octal
      "http://127.1/",
      "http://0.0.0.0/",
      "http://169.254.169.254/latest/meta-data/",
      "http://10.1.2.3/",
      "http://192.168.0.1/",
      "http://[::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[fd00::1]/",
      "http://[fe80::1]/",
    ]) {
      await expect(safeRequest(url, { ...options, allow: allowListOf([]) }), url).rejects.toBeInstanceOf(
        BlockedAddressError,
      );
    }
    // public addresses pass, also IPv4 ones (an IPv4-mapped rule once refused every IPv4 address)
    for (const address of [
      "93.184.216.34",
      "8.8.8.8",
      "2606:4700:4700::1111",
      "::ffff:8.8.8.8",
      "::ffff:808:808",
    ])
      expect(isForbiddenAddress(address), address).toBe(false);
    for (const address of [
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "0:0:0:0:0:ffff:a9fe:a9fe",
      "::ffff:10.0.0.1",
    ])
      expect(isForbiddenAddress(address), address).toBe(true);
  });

  it("follows no redirect: a 3xx to the metadata service or to a private address is the answer itself", async () => {
    const allow = allowListOf(["127.0.0.1/32"]);
    reached.length = 0;
    const toMetadata = await safeRequest(`${base}/to-metadata`, { ...options, allow });
    expect(toMetadata.status).toBe(302);
    expect(toMetadata.headers.location).toBe("http://169.254.169.254/latest/meta-data/");
    expect(toMetadata.body).toBe("moved");
    const toLoopback = await safeRequest(`${base}/to-loopback`, { ...options, allow });
    expect(toLoopback.status).toBe(307);
    // the redirect target was never asked
    expect(reached).toEqual(["/to-metadata", "/to-loopback"]);
  });

  it("refuses URLs with credentials and schemes other than http(s)", async () => {
    const allow = allowListOf(["127.0.0.1/32"]);
    await expect(safeRequest(`http://user:pw@127.0.0.1/`, { ...options, allow })).rejects.toThrow(
      /credentials/,
    );
    await expect(safeRequest("file:///etc/passwd", { ...options, allow })).rejects.toThrow(/scheme file:/);
    await expect(safeRequest("gopher://127.0.0.1/", { ...options, allow })).rejects.toThrow(/scheme gopher:/);
  });
});
