import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";

/** Receives every message sent to one reply subject; `undefined` once the inbox is closed. */
export type ReplyListener = (msg: Msg | undefined) => void;

export interface ReplySubject {
  readonly subject: string;
  close(): void;
}

/**
 * One wildcard subscription for the replies of every request of a connection
 * (as nats.js multiplexes its own requests), except that a reply subject stays
 * open for several messages: keep-alives from the serving replica, then its
 * answer. Opening a reply subject costs a map entry, not a SUB/UNSUB pair.
 */
export class ReplyInbox {
  private readonly base = `${createInbox()}.`;
  private readonly listeners = new Map<string, ReplyListener>();
  private subscription: Subscription | undefined;
  private next = 0;

  constructor(private readonly nc: NatsConnection) {}

  /** Throws when the connection is closed. */
  open(listener: ReplyListener): ReplySubject {
    this.subscribe();
    const token = (this.next++).toString(36);
    this.listeners.set(token, listener);
    return {
      subject: this.base + token,
      close: () => {
        this.listeners.delete(token);
      },
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  private subscribe(): void {
    if (this.subscription && !this.subscription.isClosed()) return;
    const subscription = this.nc.subscribe(`${this.base}*`, {
      callback: (error, msg) => {
        if (error) return;
        this.listeners.get(msg.subject.slice(this.base.length))?.(msg);
      },
    });
    this.subscription = subscription;
    void subscription.closed.then(() => {
      if (this.subscription !== subscription) return;
      for (const listener of this.listeners.values()) listener(undefined);
      this.listeners.clear();
    });
  }
}
