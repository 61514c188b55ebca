import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP } from "node:net";

export class BlockedAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Loopback, private, link-local, unique-local, CGNAT, multicast, metadata and unspecified ranges. */
function forbiddenRanges(): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.0.0.0", 24],
    ["192.168.0.0", 16],
    ["198.18.0.0", 15],
    ["224.0.0.0", 4],
    ["240.0.0.0", 4],
  ] as const) {
    list.addSubnet(net, prefix, "ipv4");
  }
  for (const [net, prefix] of [
    ["::", 128],
    ["::1", 128],
    ["fc00::", 7],
    ["fe80::", 10],
    ["ff00::", 8],
    ["64:ff9b::", 96],
  ] as const) {
    list.addSubnet(net, prefix, "ipv6");
  }
  return list;
}

const FORBIDDEN = forbiddenRanges();

/** Hosts or CIDRs (e.g. "127.0.0.1/32", "localhost") that may be reached although private. */
export interface AllowList {
  hosts: Set<string>;
  ranges: BlockList;
  /** Every address is allowed (an explicitly trusted internal webhook). */
  all?: boolean;
}

export function allowListOf(entries: readonly string[]): AllowList {
  const hosts = new Set<string>();
  const ranges = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split("/");
    const family = address ? isIP(address) : 0;
    if (address && family)
      ranges.addSubnet(address, Number(prefix ?? (family === 4 ? 32 : 128)), family === 4 ? "ipv4" : "ipv6");
    else hosts.add(entry.toLowerCase());
  }
  return { hosts, ranges };
}

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail counts as two). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().split("%")[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(":").map((group) => Number.parseInt(group, 16)) : []);
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, in any spelling) reaches, so it
 * is judged by the IPv4 ranges. (A `::ffff:0:0/96` rule in a BlockList would match every IPv4
 * address, public ones included, since BlockList checks IPv4 addresses against IPv6 rules in their
 * mapped form.)
 */
function mappedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const groups = ipv6Groups(address);
  if (groups.length !== 8 || groups.slice(0, 5).some((group) => group !== 0) || groups[5] !== 0xffff)
    return undefined;
  const [high, low] = [groups[6]!, groups[7]!];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

export function isForbiddenAddress(address: string, allow?: AllowList): boolean {
  if (allow?.all) return false;
  const mapped = mappedIpv4(address);
  if (mapped) return isForbiddenAddress(mapped, allow);
  const family = isIP(address) === 6 ? "ipv6" : "ipv4";
  if (allow?.ranges.check(address, family)) return false;
  return FORBIDDEN.check(address, family);
}

export interface SafeResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  truncated: boolean;
}

/**
 * One HTTP request that refuses forbidden addresses (checked after DNS, and the
 * connection is pinned to the checked address), follows no redirects, and caps
 * size and time.
 */
export async function safeRequest(
  rawUrl: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs: number;
    maxBytes: number;
    allow: AllowList;
    signal?: AbortSignal;
  },
): Promise<SafeResponse> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new BlockedAddressError(`"${rawUrl}" is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new BlockedAddressError(`scheme ${url.protocol} is not allowed`);
  if (url.username || url.password) throw new BlockedAddressError("credentials in URLs are not allowed");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const hostAllowed = options.allow.hosts.has(host.toLowerCase());
  const addresses = isIP(host)
    ? [{ address: host, family: isIP(host) }]
    : await lookup(host, { all: true, verbatim: true });
  if (addresses.length === 0) throw new BlockedAddressError(`${host} does not resolve`);
  for (const entry of addresses) {
    if (!hostAllowed && isForbiddenAddress(entry.address, options.allow)) {
      throw new BlockedAddressError(
        `${host} resolves to ${entry.address}, a private or local address, which is not allowed`,
      );
    }
  }
  const pinned = addresses[0]!;
  const transport = url.protocol === "https:" ? https : http;
  return new Promise<SafeResponse>((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: options.method ?? "GET",
        headers: { "user-agent": "agent-runtime-tools/1", ...options.headers },
        timeout: options.timeoutMs,
        // connect only to the address that was checked (no DNS rebinding between check and use)
        lookup: (_hostname, lookupOptions, callback) => {
          if ((lookupOptions as { all?: boolean }).all) {
            (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
              pinned,
            ]);
          } else {
            callback(null, pinned.address, pinned.family);
          }
        },
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        response.on("data", (chunk: Buffer) => {
          if (truncated) return;
          size += chunk.length;
          if (size > options.maxBytes) {
            truncated = true;
            chunks.push(chunk.subarray(0, chunk.length - (size - options.maxBytes)));
            response.destroy();
            finish();
            return;
          }
          chunks.push(chunk);
        });
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          const headers: Record<string, string> = {};
          for (const [key, value] of Object.entries(response.headers)) {
            if (typeof value === "string" && !/cookie|authorization/i.test(key)) headers[key] = value;
          }
          resolve({
            status: response.statusCode ?? 0,
            headers,
            body: Buffer.concat(chunks).toString("utf8"),
            truncated,
          });
        };
        response.on("end", finish);
        response.on("error", (error) => (truncated ? finish() : reject(error)));
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    request.on("error", reject);
    if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}
