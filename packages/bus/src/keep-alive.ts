import { Empty, headers, type Msg } from "@nats-io/nats-core";

/**
 * The bus's own request protocol, spoken only between `Bus.request` and
 * `Bus.serve`:
 * - a request carries `x-keepalive: <ms>`, asking the replica that takes it to
 *   send an empty keep-alive message (same header) on the reply subject every
 *   `<ms>` while it works. A fast call sends none; a slow one sends one small
 *   message per interval, so the requester can tell a slow replica from a dead one.
 * - a replica that turns a request away before handling it (full, or shutting
 *   down) marks its error reply with `x-refused`, so the request can go to
 *   another replica whatever its retry safety.
 */
export const KeepAliveHeader = "x-keepalive";
export const RefusedHeader = "x-refused";

export const DEFAULT_KEEPALIVE_MS = 1000;
/** Keep-alives missed before an attempt is given up and its replica presumed dead. */
export const MISSED_KEEPALIVES = 3;
const MIN_KEEPALIVE_MS = 50;

export type Refusal = "overloaded" | "draining";

export function refusalHeaders(reason: Refusal) {
  const refused = headers();
  refused.set(RefusedHeader, reason);
  return refused;
}

/** Whether a reply came from a replica that turned the request away unhandled. */
export function isRefusal(msg: Msg): boolean {
  return msg.headers?.has(RefusedHeader) === true;
}

/** Whether a reply-subject message is a keep-alive (empty, not a no-responders status). */
export function isKeepAlive(msg: Msg): boolean {
  return msg.data.length === 0 && msg.headers?.has(KeepAliveHeader) === true && msg.headers.code !== 503;
}

/** Serving side: sends keep-alives while a request is worked on, if its requester asked. Returns the stop. */
export function startKeepAlive(msg: Msg): (() => void) | undefined {
  if (!msg.reply) return undefined;
  const requested = Number(msg.headers?.get(KeepAliveHeader));
  if (!(requested > 0)) return undefined;
  const timer = setInterval(
    () => {
      const alive = headers();
      alive.set(KeepAliveHeader, "1");
      try {
        msg.respond(Empty, { headers: alive });
      } catch {
        // connection closing: the requester's own timers take over
      }
    },
    Math.max(MIN_KEEPALIVE_MS, requested),
  );
  return () => clearInterval(timer);
}
