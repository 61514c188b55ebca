import { setMaxListeners } from "node:events";
import {
  type Endpoint,
  formatZodError,
  Headers,
  RuntimeError,
  replyEnvelope,
  toWireError,
  type WireError,
} from "@agent-runtime/contracts";
import { SpanAttribute, SpanKind, withSpan } from "@agent-runtime/telemetry";
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StoredMsg,
  type StreamConfig,
} from "@nats-io/jetstream";
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { ROOT_CONTEXT, SpanStatusCode } from "@opentelemetry/api";
import { z } from "zod";
import { decodeWith, encodeJson } from "./codec.js";
import { overloadedError } from "./errors.js";
import { type Backoff, exchange } from "./exchange.js";
import {
  isConsumerExists,
  isReplicasNotSupported,
  isStreamExists,
  JetStreamErrorCode,
} from "./jetstream-errors.js";
import {
  DEFAULT_KEEPALIVE_MS,
  KeepAliveHeader,
  MISSED_KEEPALIVES,
  type Refusal,
  refusalHeaders,
  startKeepAlive,
} from "./keep-alive.js";
import type { Admission } from "./lanes.js";
import { InFlightLimiter } from "./limiter.js";
import type { BusLogger } from "./logger.js";
import { ReplyInbox } from "./reply-inbox.js";
import {
  backlog,
  type ConsumerBacklog,
  checkSequence,
  eraseMessage,
  nextDirect,
  purgeSubject,
  type StreamMessage,
  type StreamSubjectCount,
  subjectCount,
} from "./stream-admin.js";
import { StreamDefinitions, type StreamName } from "./streams.js";
import { extractTraceContext, injectTraceContext, messageAttributes } from "./trace.js";

export interface BusOptions {
  /** Service name, used as the NATS connection name. */
  name: string;
  /** One server or a comma-separated list (`nats://a:4222,nats://b:4222`): the client may use any of them. */
  url?: string;
  /** Replica count of every stream this bus creates or updates (1 on a single server, 3 on a cluster). Default 1. */
  replicas?: number;
  /** Namespace for every subject and stream (isolates tests and tenants of one NATS). */
  prefix?: string;
  logger: BusLogger;
  /** Told of every request an endpoint of this bus turned away (full, or shutting down). */
  onRefused?: (subject: string, reason: "overloaded" | "draining") => void;
}

export interface RequestOptions {
  /** Concrete subject when the endpoint is a family (e.g. `tool.exec.<name>`). */
  subject?: string;
  /** Time to wait for an answer, every attempt included. Default: until `meta.deadline`, else 30 s. */
  timeoutMs?: number;
  headers?: Record<string, string>;
  /**
   * Longest one attempt may take before a retry-safe request goes to another
   * replica (a request that is not safe to re-send fails with `timeout`).
   * Default: the endpoint's `attemptTimeoutMs`, else no limit short of the deadline.
   */
  attemptTimeoutMs?: number;
  /**
   * `false`: one attempt, never re-sent. `true`: safe to re-send whatever the
   * endpoint declares. Or tune: `{ safe?, maxAttempts?, backoff? }`.
   */
  retry?: boolean | RetryOptions;
  /**
   * Interval at which the serving replica is asked to signal that it is still
   * working; an attempt with no sign of life for 3 intervals is given up, its
   * replica presumed dead. 0 turns this off (for responders that are not a Bus).
   * Default 1000.
   */
  keepAliveMs?: number;
  /** Stops waiting (and re-sending) when aborted; the abort reason is thrown when it is a RuntimeError. */
  signal?: AbortSignal;
  /**
   * Called before each re-send with its attempt number (2, 3, …) and what
   * went wrong; returning `false` gives up with that failure (e.g. once a
   * streamed call has already forwarded output), anything else lets it go.
   */
  beforeRetry?: (attempt: number, cause: RuntimeError) => boolean | undefined;
}

export interface RetryOptions {
  /** Overrides the endpoint's retry safety for this call. */
  safe?: boolean;
  /** Attempts in all, the first included (default 3). */
  maxAttempts?: number;
  /** Delay before attempt n+1: a random share between half and all of initialMs·2^(n-1), capped at maxMs. */
  backoff?: Backoff;
}

export interface HandlerContext {
  subject: string;
  headers: MsgHdrs | undefined;
  /** Epoch ms after which the caller has given up. */
  deadline: number;
  /** Aborts when the deadline passes or the bus drains. */
  signal: AbortSignal;
}

export interface ServeOptions {
  queue: string;
  maxInFlight: number;
  /** Concrete subject (may contain wildcards) when the endpoint is a family. */
  subject?: string;
  /** A second bound, asked once a request is valid (e.g. `interactiveReserve`, lanes.ts). */
  admit?: Admission;
}

export interface ServedEndpoint {
  readonly subject: string;
  readonly inFlight: number;
  stop(): Promise<void>;
}

export interface PublishOptions {
  msgId?: string;
  headers?: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_BACKOFF: Backoff = { initialMs: 25, maxMs: 500 };
const envelopeCache = new WeakMap<z.ZodType, z.ZodType>();

function envelopeFor(schema: z.ZodType): z.ZodType {
  let envelope = envelopeCache.get(schema);
  if (!envelope) {
    envelope = replyEnvelope(schema);
    envelopeCache.set(schema, envelope);
  }
  return envelope;
}

function sanitizePrefix(prefix: string | undefined): string {
  if (!prefix) return "";
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new RangeError(`bus prefix must be letters, digits, '_' or '-', got "${prefix}"`);
  }
  return prefix;
}

function deadlineOf(payload: unknown): number | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const meta = (payload as { meta?: { deadline?: unknown } }).meta;
  return typeof meta?.deadline === "number" ? meta.deadline : undefined;
}

/** A reply of JetStream's STREAM.MSG.GET: the message (data in base64), or an error. */
const MessageGetReply = z.object({
  message: z.object({ seq: z.number(), data: z.string().optional() }).optional(),
  error: z
    .object({ code: z.number(), err_code: z.number().optional(), description: z.string().optional() })
    .optional(),
});

/** One NATS connection per process, with typed request/reply, endpoints and JetStream. */
export class Bus {
  readonly js: JetStreamClient;
  readonly logger: BusLogger;
  readonly prefix: string;
  /** Replica count of the streams this bus creates (`NATS_REPLICAS`). */
  readonly replicas: number;
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private readonly served = new Set<ServedEndpoint>();
  private readonly stoppers = new Set<() => Promise<void>>();
  private readonly drainController = new AbortController();
  private readonly inbox: ReplyInbox;
  private draining = false;
  private readonly onRefused: BusOptions["onRefused"];

  constructor(
    readonly nc: NatsConnection,
    options: { prefix?: string; logger: BusLogger; replicas?: number; onRefused?: BusOptions["onRefused"] },
  ) {
    this.onRefused = options.onRefused;
    this.prefix = sanitizePrefix(options.prefix);
    this.replicas = options.replicas ?? 1;
    // every request in flight listens for the drain (released when it ends): not a leak
    setMaxListeners(0, this.drainController.signal);
    this.logger = options.logger;
    this.js = jetstream(nc);
    this.inbox = new ReplyInbox(nc);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** The endpoints this bus serves, each with its requests in flight. */
  servedEndpoints(): readonly ServedEndpoint[] {
    return [...this.served];
  }

  /** Aborts when the bus begins to drain. */
  get drainSignal(): AbortSignal {
    return this.drainController.signal;
  }

  subject(subject: string): string {
    return this.prefix ? `${this.prefix}.${subject}` : subject;
  }

  unprefix(subject: string): string {
    return this.prefix && subject.startsWith(`${this.prefix}.`)
      ? subject.slice(this.prefix.length + 1)
      : subject;
  }

  streamName(name: string): string {
    return this.prefix ? `${this.prefix}_${name}` : name;
  }

  /** The JetStream manager, made once; a failure to make it (JetStream away) is not kept, so the next call tries again. */
  async jsm(): Promise<JetStreamManager> {
    if (!this.jsmPromise) {
      const made = jetstreamManager(this.nc);
      this.jsmPromise = made;
      made.catch(() => {
        if (this.jsmPromise === made) this.jsmPromise = undefined;
      });
    }
    return this.jsmPromise;
  }

  /**
   * Typed request/reply: the reply is validated; an error reply is thrown as a
   * RuntimeError. Each attempt goes to one replica of the queue group; a
   * request no replica took (none listening, or turned away while full or
   * shutting down) is sent again, and so is one whose outcome is unknown (its
   * replica went silent or the attempt timed out) when the endpoint declares it
   * retry-safe. Once the deadline passes unanswered: `deadline_exceeded`.
   */
  async request<E extends Endpoint>(
    endpoint: E,
    payload: z.input<E["request"]>,
    options: RequestOptions = {},
  ): Promise<z.infer<E["reply"]>> {
    const subject = options.subject ?? endpoint.subject;
    const metaDeadline = deadlineOf(payload);
    const timeoutMs = Math.max(
      1,
      options.timeoutMs ?? (metaDeadline === undefined ? DEFAULT_TIMEOUT_MS : metaDeadline - Date.now()),
    );
    if (metaDeadline !== undefined && metaDeadline <= Date.now()) {
      throw new RuntimeError("deadline_exceeded", `deadline passed before ${subject} was asked`, {
        retryable: false,
      });
    }
    const deadline = Date.now() + timeoutMs;
    const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    const messageHeaders = headers();
    injectTraceContext(messageHeaders);
    messageHeaders.set(Headers.deadline, String(deadline));
    if (keepAliveMs > 0) messageHeaders.set(KeepAliveHeader, String(keepAliveMs));
    for (const [key, value] of Object.entries(options.headers ?? {})) messageHeaders.set(key, value);

    const retry = typeof options.retry === "object" ? options.retry : {};
    const reply = await exchange(this.nc, this.inbox, {
      subject,
      wireSubject: this.subject(subject),
      data: encodeJson(payload),
      headers: messageHeaders,
      deadline,
      retrySafe:
        options.retry === true ||
        (options.retry !== false && (retry.safe ?? endpoint.isRetrySafe?.(payload) ?? false)),
      maxAttempts: options.retry === false ? 1 : Math.max(1, retry.maxAttempts ?? DEFAULT_MAX_ATTEMPTS),
      attemptTimeoutMs: options.attemptTimeoutMs ?? endpoint.attemptTimeoutMs,
      silenceMs: keepAliveMs * MISSED_KEEPALIVES,
      backoff: retry.backoff ?? DEFAULT_BACKOFF,
      signal: options.signal,
      beforeRetry: options.beforeRetry,
    });
    let parsed: { ok: true; data: unknown } | { ok: false; error: WireError };
    try {
      parsed = decodeWith(envelopeFor(endpoint.reply), reply.data) as typeof parsed;
    } catch (error) {
      const detail = error instanceof z.ZodError ? formatZodError(error) : "reply is not JSON";
      throw new RuntimeError("upstream", `invalid reply on ${subject}: ${detail}`, {
        retryable: false,
        cause: error,
      });
    }
    if (!parsed.ok) throw RuntimeError.fromWire(parsed.error);
    return parsed.data as z.infer<E["reply"]>;
  }

  /**
   * Serves an endpoint in a queue group. Requests are validated; past
   * `maxInFlight` the endpoint answers `overloaded` at once.
   */
  serve<E extends Endpoint>(
    endpoint: E,
    handler: (data: z.infer<E["request"]>, context: HandlerContext) => Promise<z.input<E["reply"]>>,
    options: ServeOptions,
  ): ServedEndpoint {
    const subject = options.subject ?? endpoint.subject;
    const limiter = new InFlightLimiter(options.maxInFlight);
    const logger = this.logger;
    const respond = (msg: Msg, body: unknown, refusal?: Refusal) => {
      if (!msg.reply) return;
      try {
        msg.respond(encodeJson(body), refusal ? { headers: refusalHeaders(refusal) } : undefined);
      } catch (error) {
        logger.warn({ err: error, subject }, "could not send reply");
      }
    };

    const handle = async (msg: Msg) => {
      const deadline = Number(msg.headers?.get(Headers.deadline)) || Date.now() + DEFAULT_TIMEOUT_MS;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        respond(msg, {
          ok: false,
          error: { code: "deadline_exceeded", message: "deadline passed", retryable: false },
        });
        return;
      }
      let data: z.infer<E["request"]>;
      try {
        data = decodeWith(endpoint.request, msg.data) as z.infer<E["request"]>;
      } catch (error) {
        const message =
          error instanceof z.ZodError
            ? `invalid ${subject} request: ${formatZodError(error)}`
            : `invalid ${subject} request: body is not JSON`;
        const details = error instanceof z.ZodError ? toWireError(error).details : undefined;
        respond(msg, { ok: false, error: { code: "validation", message, retryable: false, details } });
        return;
      }
      const admitted = options.admit?.(data);
      if (admitted && "refused" in admitted) {
        this.onRefused?.(subject, "overloaded");
        respond(msg, { ok: false, error: admitted.refused }, "overloaded");
        return;
      }
      const { signal, dispose } = handlerSignal(remaining, this.drainController.signal);
      const parent = extractTraceContext(msg.headers, ROOT_CONTEXT);
      // no timer can fire between the reply and this finally (only microtasks run in between)
      const stopKeepAlive = startKeepAlive(msg);
      const unprefixed = this.unprefix(msg.subject);
      try {
        await withSpan(
          unprefixed,
          async (span) => {
            try {
              const result = await handler(data, {
                subject: unprefixed,
                headers: msg.headers,
                deadline,
                signal,
              });
              respond(msg, { ok: true, data: result });
            } catch (error) {
              // answered as an error reply, not thrown: the span is marked here
              const wire = toWireError(error);
              if (wire.code === "internal") {
                logger.error({ err: error, subject: msg.subject }, "handler failed");
                span.recordException(error instanceof Error ? error : new Error(String(error)));
              }
              span.setStatus({ code: SpanStatusCode.ERROR, message: wire.message });
              span.setAttribute(SpanAttribute.errorType, wire.code);
              respond(msg, { ok: false, error: wire });
            }
          },
          { kind: SpanKind.SERVER, parent, attributes: messageAttributes(unprefixed, data) },
        );
      } finally {
        dispose();
        stopKeepAlive?.();
        admitted?.release();
      }
    };

    const subscription: Subscription = this.nc.subscribe(this.subject(subject), {
      queue: options.queue,
      callback: (error, msg) => {
        if (error) {
          logger.warn({ err: error, subject }, "subscription error");
          return;
        }
        if (this.draining) {
          this.onRefused?.(subject, "draining");
          respond(
            msg,
            {
              ok: false,
              error: {
                code: "unavailable",
                message: "service is shutting down",
                retryable: true,
                retryAfterMs: 500,
              },
            },
            "draining",
          );
          return;
        }
        if (!limiter.tryAcquire()) {
          this.onRefused?.(subject, "overloaded");
          respond(msg, { ok: false, error: overloadedError(subject, limiter.limit) }, "overloaded");
          return;
        }
        handle(msg)
          .catch((err: unknown) => logger.error({ err, subject }, "endpoint crashed"))
          .finally(() => limiter.release());
      },
    });

    const served: ServedEndpoint = {
      subject,
      get inFlight() {
        return limiter.inFlight;
      },
      stop: async () => {
        this.served.delete(served);
        if (!subscription.isClosed()) await subscription.drain().catch(() => undefined);
        await limiter.idle();
      },
    };
    this.served.add(served);
    return served;
  }

  /**
   * Core NATS publish (fire and forget), with trace context. The message is validated where it is
   * received (once, at that service's boundary); the schema types what is sent.
   */
  publish<T extends z.ZodType>(
    subject: string,
    _schema: T,
    data: z.input<T>,
    options: PublishOptions = {},
  ): void {
    this.nc.publish(this.subject(subject), encodeJson(data), { headers: this.headersFor(options) });
  }

  /** Core NATS subscription; invalid messages are logged and dropped. */
  subscribe<T extends z.ZodType>(
    subject: string,
    schema: T,
    handler: (data: z.infer<T>, subject: string) => void,
  ): Subscription {
    return this.nc.subscribe(this.subject(subject), {
      callback: (error, msg) => {
        if (error) return;
        let data: z.infer<T>;
        try {
          data = decodeWith(schema, msg.data);
        } catch (cause) {
          this.logger.warn({ subject: msg.subject, reason: String(cause) }, "dropped an invalid message");
          return;
        }
        handler(data, this.unprefix(msg.subject));
      },
    });
  }

  /** Resolves once the server has everything sent so far (a subscription made before it included). */
  flush(): Promise<void> {
    return this.nc.flush();
  }

  /**
   * JetStream publish; `msgId` becomes `Nats-Msg-Id` for dedupe. Resolves once stored. Validated
   * where it is consumed (a message that does not parse there is dead-lettered with the reason).
   */
  async publishDurable<T extends z.ZodType>(
    subject: string,
    _schema: T,
    data: z.input<T>,
    options: PublishOptions & { timeoutMs?: number } = {},
  ): Promise<{ seq: number; duplicate: boolean; stream: string }> {
    try {
      const messageHeaders = this.headersFor(options);
      if (options.msgId) messageHeaders.set("Nats-Msg-Id", options.msgId);
      const payload = encodeJson(data);
      const timeoutMs = options.timeoutMs ?? 5000;
      const until = Date.now() + timeoutMs;
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.storeMessage(this.subject(subject), payload, messageHeaders, timeoutMs);
        } catch (error) {
          // On a cluster, "no responders" is a stream between leaders (a node died, an election is
          // under way): nothing was stored, so sending again is safe with or without a msgId. On
          // one server it means no stream takes the subject, which waiting cannot change.
          const remainingMs = until - Date.now();
          if (!(error instanceof NoStreamResponders) || this.replicas === 1 || remainingMs <= 0) throw error;
          await new Promise((resolve) =>
            setTimeout(resolve, Math.min(remainingMs, 100 * 2 ** Math.min(attempt, 4))),
          );
        }
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/max_payload|payload.*exceed|size exceeds/i.test(message)) {
        // sending it again cannot help
        throw new RuntimeError("validation", `message too large for ${subject}: ${message}`, {
          retryable: false,
          cause: error,
        });
      }
      throw new RuntimeError("unavailable", `could not store message on ${subject}: ${message}`, {
        retryAfterMs: 1000,
        cause: error,
      });
    }
  }

  /** Creates or updates the named streams (idempotent; safe when replicas race). */
  async ensureStreams(
    names: StreamName[],
    overrides: Partial<Record<StreamName, Partial<StreamConfig>>> = {},
  ) {
    const jsm = await this.jsm();
    for (const name of names) {
      const definition = { ...StreamDefinitions[name], ...overrides[name] };
      const config = {
        num_replicas: this.replicas,
        ...definition,
        name: this.streamName(name),
        subjects: definition.subjects.map((subject) => this.subject(subject)),
      } as StreamConfig;
      try {
        await jsm.streams.add(config);
      } catch (error) {
        if (isStreamExists(error)) {
          await jsm.streams.update(config.name, config).catch((updateError: unknown) => {
            this.logger.warn({ err: updateError, stream: config.name }, "stream exists with another config");
          });
        } else if (this.replicas > 1 && isReplicasNotSupported(error)) {
          throw new RangeError(
            `stream ${config.name} wants ${this.replicas} replicas but NATS is not a JetStream cluster (set NATS_REPLICAS=1)`,
          );
        } else {
          throw error;
        }
      }
    }
  }

  /** Creates or updates a durable pull consumer. */
  async ensureConsumer(stream: StreamName, config: Partial<ConsumerConfig> & { durable_name: string }) {
    const jsm = await this.jsm();
    const full: Partial<ConsumerConfig> = {
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...config,
      ...(config.filter_subject ? { filter_subject: this.subject(config.filter_subject) } : {}),
    };
    const streamName = this.streamName(stream);
    try {
      await jsm.consumers.add(streamName, full);
    } catch (error) {
      if (isConsumerExists(error)) {
        await jsm.consumers.update(streamName, config.durable_name, full);
      } else {
        throw error;
      }
    }
  }

  /**
   * An ordered (ephemeral, unacknowledged) consumer of the messages of `stream` under `subject`,
   * from just after sequence `after` (0: from the first stored).
   */
  async readStream(stream: StreamName, subject: string, after = 0): Promise<Consumer> {
    return this.js.consumers.get(this.streamName(stream), {
      filter_subjects: this.subject(subject),
      ...(after > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
  }

  /** The last message stored in `stream` under `subject`; null when none is. */
  async lastStreamMessage(stream: StreamName, subject: string): Promise<StoredMsg | null> {
    const jsm = await this.jsm();
    return jsm.streams.getMessage(this.streamName(stream), { last_by_subj: this.subject(subject) });
  }

  /**
   * The first message stored in `stream` under `subject` at or after sequence `seq`, null when none
   * is left (or the stream is not there). Reads with STREAM.MSG.GET `next_by_subj`, so it needs no
   * consumer (a work-queue stream refuses a second consumer over its subjects). Any other refusal
   * is `unavailable` (retryable).
   */
  async nextStreamMessage(stream: StreamName, subject: string, seq: number): Promise<StreamMessage | null> {
    checkSequence(seq);
    const response = await this.nc.request(
      `$JS.API.STREAM.MSG.GET.${this.streamName(stream)}`,
      JSON.stringify({ seq, next_by_subj: this.subject(subject) }),
      { timeout: 5000 },
    );
    const reply = MessageGetReply.parse(response.json());
    if (
      reply.error?.err_code === JetStreamErrorCode.noMessageFound ||
      (!reply.message && reply.error?.code === 404)
    )
      return null;
    if (!reply.message)
      throw new RuntimeError(
        "unavailable",
        `${stream} refused a read: ${reply.error?.description ?? "unknown"}`,
        { retryAfterMs: 1000 },
      );
    return { seq: reply.message.seq, data: Buffer.from(reply.message.data ?? "", "base64") };
  }

  /**
   * Like `nextStreamMessage`, but asked with JetStream direct get, which any replica of the stream
   * answers (the stream must set `allow_direct`): null when no message is left. A stream that is not
   * there is an error here (no replica answers), as is any refusal; the JetStream manager's error
   * is thrown as it is.
   */
  async nextStreamMessageDirect(
    stream: StreamName,
    subject: string,
    seq: number,
  ): Promise<StreamMessage | null> {
    return nextDirect(await this.jsm(), this.streamName(stream), this.subject(subject), seq);
  }

  /**
   * How many messages `stream` stores under `subject` (which may hold wildcards), with the stream's
   * first sequence (where a read of the subject with `nextStreamMessage` starts). Null when the
   * stream is not there (`JetStreamErrorCode.streamNotFound`); any other failure is thrown.
   */
  async streamSubjectCount(stream: StreamName, subject: string): Promise<StreamSubjectCount | null> {
    return subjectCount(await this.jsm(), this.streamName(stream), this.subject(subject));
  }

  /**
   * The backlog of the durable consumer `durable` of `stream`: messages not yet delivered (its lag)
   * and delivered but not yet acknowledged. Null when the consumer or its stream is not there
   * (`JetStreamErrorCode.consumerNotFound`, `streamNotFound`); any other failure is thrown.
   */
  async consumerBacklog(stream: StreamName, durable: string): Promise<ConsumerBacklog | null> {
    return backlog(await this.jsm(), this.streamName(stream), durable);
  }

  /**
   * Deletes every message `stream` stores under `subject` (which may hold wildcards); resolves with
   * how many went. A stream that is not there is not tolerated: the JetStream API error
   * (`JetStreamErrorCode.streamNotFound`) is thrown, as is any other failure.
   */
  async purgeStreamSubject(stream: StreamName, subject: string): Promise<number> {
    return purgeSubject(await this.jsm(), this.streamName(stream), this.subject(subject));
  }

  /**
   * Deletes the message at `seq` (from 1) of `stream`, its data overwritten on disk. True once
   * deleted; false when there was nothing to delete (the message already gone or never stored,
   * `JetStreamErrorCode.messageDeleteFailed`, or the stream not there, `streamNotFound`). Any other
   * failure is thrown.
   */
  async deleteStreamMessage(stream: StreamName, seq: number): Promise<boolean> {
    return eraseMessage(await this.jsm(), this.streamName(stream), seq);
  }

  /** Registers work to stop when the bus drains (consumers, servers). */
  onDrain(stop: () => Promise<void>): () => void {
    this.stoppers.add(stop);
    return () => this.stoppers.delete(stop);
  }

  /** Stops intake, finishes in-flight work, then drains the connection. */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await Promise.all([...this.served].map((served) => served.stop()));
    await Promise.all([...this.stoppers].map((stop) => stop()));
    this.drainController.abort(new RuntimeError("unavailable", "service is shutting down"));
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.draining = true;
    this.drainController.abort(new RuntimeError("unavailable", "service is shutting down"));
    if (!this.nc.isClosed()) await this.nc.close();
  }

  /** Round trip to the server, for readiness. */
  async ping(): Promise<void> {
    if (this.nc.isClosed()) throw new Error("NATS connection closed");
    await this.nc.flush();
  }

  /**
   * A JetStream publish over the connection's shared reply inbox: the stream's PubAck is the reply
   * (what `js.publish` does, without a subscription-multiplexer request and its error objects per
   * message).
   */
  private storeMessage(
    subject: string,
    payload: Uint8Array,
    messageHeaders: MsgHdrs,
    timeoutMs: number,
  ): Promise<{ seq: number; duplicate: boolean; stream: string }> {
    return new Promise((resolve, reject) => {
      const reply = this.inbox.open((msg) => {
        reply.close();
        clearTimeout(timer);
        if (!msg) return reject(new Error("connection closed"));
        if (msg.headers?.code === 503) return reject(new NoStreamResponders());
        const parsed = PubAck.safeParse(msg.data.length > 0 ? safeJson(msg.data) : undefined);
        if (!parsed.success) return reject(new Error("unreadable reply from JetStream"));
        if (parsed.data.error)
          return reject(
            new Error(
              `${parsed.data.error.description} (${parsed.data.error.err_code ?? parsed.data.error.code})`,
            ),
          );
        const { seq, stream, duplicate } = parsed.data;
        if (seq === undefined || stream === undefined)
          return reject(new Error("JetStream did not store the message"));
        resolve({ seq, stream, duplicate: duplicate === true });
      });
      const timer = setTimeout(() => {
        reply.close();
        reject(new Error(`no reply from JetStream within ${timeoutMs} ms`));
      }, timeoutMs);
      try {
        this.nc.publish(subject, payload, { reply: reply.subject, headers: messageHeaders });
      } catch (error) {
        reply.close();
        clearTimeout(timer);
        reject(error);
      }
    });
  }

  private headersFor(options: PublishOptions): MsgHdrs {
    const messageHeaders = headers();
    injectTraceContext(messageHeaders);
    for (const [key, value] of Object.entries(options.headers ?? {})) messageHeaders.set(key, value);
    return messageHeaders;
  }
}

/**
 * A handler's signal: aborts when its deadline passes or the bus drains. One controller, one timer
 * and one listener, released by `dispose` (`AbortSignal.any` of a timeout signal costs several times
 * more per request and keeps a dependent on the long-lived drain signal until collected).
 */
function handlerSignal(remainingMs: number, drain: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (drain.aborted) controller.abort(drain.reason);
  const onDrain = () => controller.abort(drain.reason);
  drain.addEventListener("abort", onDrain, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
    remainingMs,
  );
  timer.unref();
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      drain.removeEventListener("abort", onDrain);
    },
  };
}

/** A JetStream publish that no stream answered (503 no responders). */
class NoStreamResponders extends Error {
  constructor() {
    super("no stream stores this subject");
    this.name = new.target.name;
  }
}

/** JetStream's answer to a publish: where it was stored, or why not. */
const PubAck = z.object({
  stream: z.string().optional(),
  seq: z.number().optional(),
  duplicate: z.boolean().optional(),
  error: z.object({ code: z.number(), err_code: z.number().optional(), description: z.string() }).optional(),
});

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

/** `NATS_URL` as the client's server list: one URL or several separated by commas. */
export function natsServers(url: string | undefined): string[] {
  const servers = (url ?? "nats://127.0.0.1:4222")
    .split(",")
    .map((server) => server.trim())
    .filter((server) => server.length > 0);
  if (servers.length === 0) throw new RangeError("NATS_URL names no server");
  return servers;
}

export async function connectBus(options: BusOptions): Promise<Bus> {
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new RangeError(`stream replicas must be an integer from 1 to 5, got ${replicas}`);
  }
  const nc = await connect({
    servers: natsServers(options.url),
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    // a stack captured for every request costs more CPU than the request itself; errors keep their own
    noAsyncTraces: true,
  });
  const logger = options.logger;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect" || status.type === "reconnect" || status.type === "error") {
        logger.warn({ nats: status.type }, "NATS connection status changed");
      }
    }
  })().catch(() => undefined);
  return new Bus(nc, {
    logger,
    replicas,
    ...(options.prefix ? { prefix: options.prefix } : {}),
    ...(options.onRefused ? { onRefused: options.onRefused } : {}),
  });
}
