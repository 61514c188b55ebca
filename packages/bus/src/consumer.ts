import { DeadLetter, formatZodError, RuntimeError, Subjects } from "@agent-runtime/contracts";
import { SpanAttribute, SpanKind, withSpan } from "@agent-runtime/telemetry";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/nats-core";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { decodeText, decodeWith } from "./codec.js";
import { InFlightLimiter } from "./limiter.js";
import type { StreamName } from "./streams.js";
import { extractTraceContext, messageAttributes } from "./trace.js";

export interface ConsumeContext {
  subject: string;
  headers: MsgHdrs | undefined;
  /** 1 on first delivery. */
  deliveryCount: number;
  /** Aborts when the bus drains. */
  signal: AbortSignal;
  /** Tells the server the work is still going (resets the ack timer). */
  working(): void;
  /**
   * Acknowledges the message only once `until` resolves, after the handler returned (the handler's
   * concurrency slot is free at once); if it rejects, the message is delivered again. For work
   * that is done but not yet durable (e.g. a write committed without waiting for its flush).
   */
  ackAfter(until: Promise<unknown>): void;
}

export interface DeadLetterContext {
  subject: string;
  headers: MsgHdrs | undefined;
  deliveryCount: number;
  /** The message body as text (all there is of a message that did not parse). */
  payload: string;
  /** Aborts when the hook has had `ackWaitMs` or the bus drains; dead-lettering then goes on. */
  signal: AbortSignal;
}

export interface ConsumeOptions<T extends z.ZodType> {
  stream: StreamName;
  durable: string;
  filterSubject?: string;
  schema: T;
  /** Messages processed at once by this process. */
  concurrency: number;
  /** Deliveries before a failing message is dead-lettered. */
  maxDeliver?: number;
  /** nak delay: initial * 2^(delivery-1), capped at max. */
  backoff?: { initialMs: number; maxMs: number };
  /** Time the server waits for an ack before redelivering (heartbeats extend it). */
  ackWaitMs?: number;
  maxAckPending?: number;
  /** Dead letters go to `dlq.<origin>`. */
  deadLetterOrigin: string;
  handler: (data: z.infer<T>, context: ConsumeContext) => Promise<void>;
  /**
   * Called before a message is dead-lettered, with its parsed data (undefined
   * when it did not parse), e.g. to fail the work it stood for and tell whoever
   * waits. Errors are logged and do not stop the dead-lettering. Called again
   * only in the rare case that the message itself is redelivered (its ack was
   * lost), so it should be idempotent.
   */
  onDeadLetter?: (data: z.infer<T> | undefined, reason: string, context: DeadLetterContext) => Promise<void>;
}

export interface ConsumerHandle {
  readonly inFlight: number;
  stop(): Promise<void>;
}

/** Expiry of each pull request of a consumer (its idle heartbeat is half of it). */
const PULL_EXPIRES_MS = 5000;

export function nakDelay(deliveryCount: number, backoff: { initialMs: number; maxMs: number }): number {
  const exponent = Math.max(0, deliveryCount - 1);
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** exponent);
}

/**
 * A pull-consumer loop with explicit ack, bounded concurrency, nak with
 * growing delay, and dead-lettering of invalid or exhausted messages.
 */
export async function consume<T extends z.ZodType>(
  bus: Bus,
  options: ConsumeOptions<T>,
): Promise<ConsumerHandle> {
  const maxDeliver = options.maxDeliver ?? 5;
  const backoff = options.backoff ?? { initialMs: 1000, maxMs: 30_000 };
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const logger = bus.logger.child({ consumer: options.durable });

  await bus.ensureStreams([options.stream, "DEAD_LETTERS"]);
  await bus.ensureConsumer(options.stream, {
    durable_name: options.durable,
    ...(options.filterSubject ? { filter_subject: options.filterSubject } : {}),
    ack_wait: ackWaitMs * 1_000_000,
    max_deliver: maxDeliver + 1,
    max_ack_pending: options.maxAckPending ?? Math.max(1000, options.concurrency * 4),
  });

  const consumer = await bus.js.consumers.get(bus.streamName(options.stream), options.durable);
  const limiter = new InFlightLimiter(options.concurrency);
  const stopController = new AbortController();
  const signal = AbortSignal.any([stopController.signal, bus.drainSignal]);
  let messages: ConsumerMessages | undefined;
  let stopped = false;
  /** Messages whose work is done, waiting for `ackAfter` to acknowledge them. */
  const acking = new Set<Promise<void>>();

  const runDeadLetterHook = async (msg: JsMsg, data: z.infer<T> | undefined, reason: string) => {
    const hook = options.onDeadLetter;
    if (!hook) return;
    const heartbeat = setInterval(() => msg.working(), Math.max(250, Math.floor(ackWaitMs / 3)));
    const timeout = AbortSignal.timeout(ackWaitMs);
    const hookSignal = AbortSignal.any([timeout, bus.drainSignal]);
    try {
      await new Promise<void>((resolve, reject) => {
        hookSignal.addEventListener("abort", () => reject(hookSignal.reason), { once: true });
        hook(data, reason, {
          subject: bus.unprefix(msg.subject),
          headers: msg.headers,
          deliveryCount: msg.info.deliveryCount,
          payload: decodeText(msg.data),
          signal: hookSignal,
        }).then(resolve, reject);
      });
    } catch (error) {
      logger.error({ err: error, subject: msg.subject }, "dead-letter hook failed; dead-lettering anyway");
    } finally {
      clearInterval(heartbeat);
    }
  };

  /**
   * Stores the dead letter, then acks the message. (Not `term`: NATS before
   * 2.10 ignores `+TERM <reason>` and redelivers the message until max_deliver,
   * dead-lettering it each time.) The store is deduplicated by stream sequence,
   * so a redelivery after a lost ack stores nothing twice.
   */
  const deadLetter = async (msg: JsMsg, reason: string, data?: z.infer<T>) => {
    const origin = options.deadLetterOrigin;
    await runDeadLetterHook(msg, data, reason);
    try {
      await bus.publishDurable(
        Subjects.deadLetter(origin),
        DeadLetter,
        {
          origin,
          subject: bus.unprefix(msg.subject),
          stream: options.stream,
          consumer: options.durable,
          reason,
          deliveries: msg.info.deliveryCount,
          payload: decodeText(msg.data).slice(0, 64 * 1024),
          ts: Date.now(),
        },
        { msgId: `dlq:${msg.info.stream}:${msg.info.streamSequence}` },
      );
    } catch (error) {
      // Could not store the dead letter: leave it for redelivery rather than lose it.
      logger.error(
        { err: error, subject: msg.subject },
        "dead-letter publish failed; message will be redelivered",
      );
      msg.nak(backoff.maxMs);
      return;
    }
    await msg
      .ackAck()
      .catch((error: unknown) =>
        logger.warn({ err: error, subject: msg.subject }, "ack of a dead-lettered message not confirmed"),
      );
    logger.warn({ subject: msg.subject, reason }, "message dead-lettered");
  };

  const processMessage = async (msg: JsMsg) => {
    let data: z.infer<T>;
    try {
      data = decodeWith(options.schema, msg.data);
    } catch (error) {
      const reason =
        error instanceof z.ZodError
          ? `invalid message: ${formatZodError(error)}`
          : "invalid message: body is not JSON";
      await deadLetter(msg, reason);
      return;
    }
    const heartbeat = setInterval(() => msg.working(), Math.max(250, Math.floor(ackWaitMs / 3)));
    const parent = extractTraceContext(msg.headers, ROOT_CONTEXT);
    const subject = bus.unprefix(msg.subject);
    let ackAfter: Promise<unknown> | undefined;
    try {
      await withSpan(
        `process ${options.durable}`,
        () =>
          options.handler(data, {
            subject,
            headers: msg.headers,
            deliveryCount: msg.info.deliveryCount,
            signal,
            working: () => msg.working(),
            ackAfter: (until) => {
              ackAfter = ackAfter ? Promise.all([ackAfter, until]) : until;
            },
          }),
        {
          kind: SpanKind.CONSUMER,
          parent,
          attributes: {
            ...messageAttributes(subject, data),
            [SpanAttribute.consumerGroup]: options.durable,
            "messaging.message.delivery_count": msg.info.deliveryCount,
          },
        },
      );
      // not confirmed: a lost ack only redelivers a message whose work is recorded (handlers are
      // idempotent), and a confirmed one would cost a request per message
      if (ackAfter) {
        const acked = ackAfter.then(
          () => msg.ack(),
          (error: unknown) => {
            logger.warn(
              { err: error, subject: msg.subject },
              "work not made durable; message will be redelivered",
            );
            msg.nak(backoff.initialMs);
          },
        );
        const settled = acked.finally(() => {
          clearInterval(heartbeat);
          acking.delete(settled);
        });
        acking.add(settled);
      } else {
        clearInterval(heartbeat);
        msg.ack();
      }
    } catch (error) {
      clearInterval(heartbeat);
      const deliveries = msg.info.deliveryCount;
      const permanent = error instanceof RuntimeError && !error.retryable;
      const reason = error instanceof Error ? error.message : String(error);
      if (permanent || deliveries >= maxDeliver) {
        await deadLetter(msg, permanent ? reason : `gave up after ${deliveries} deliveries: ${reason}`, data);
      } else if (signal.aborted) {
        msg.nak();
      } else {
        const delay = nakDelay(deliveries, backoff);
        logger.warn(
          { subject: msg.subject, deliveries, delayMs: delay, reason },
          "message failed; will retry",
        );
        msg.nak(delay);
      }
    }
  };

  const loop = async () => {
    while (!stopped) {
      try {
        // Short pulls: a pull waiting on a consumer leader that died (a NATS node lost in a cluster)
        // is noticed by its missed heartbeats (half the expiry) and sent again to the new leader,
        // within seconds instead of the default 30 s expiry.
        messages = await consumer.consume({
          max_messages: Math.max(1, options.concurrency),
          expires: PULL_EXPIRES_MS,
        });
        for await (const msg of messages) {
          await limiter.acquire();
          if (stopped) {
            limiter.release();
            msg.nak();
            continue;
          }
          void processMessage(msg)
            .catch((error: unknown) => logger.error({ err: error }, "consumer handler crashed"))
            .finally(() => limiter.release());
        }
      } catch (error) {
        if (stopped) return;
        logger.warn({ err: error }, "consumer loop interrupted; restarting");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };
  void loop();

  const handle: ConsumerHandle = {
    get inFlight() {
      return limiter.inFlight;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      stopController.abort();
      await messages?.close().catch(() => undefined);
      await limiter.idle();
      while (acking.size > 0) await Promise.allSettled([...acking]);
    },
  };
  bus.onDrain(() => handle.stop());
  return handle;
}
