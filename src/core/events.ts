/**
 * The event bus: services publish what happened (container start/die,
 * image pull/delete, network connect, ...) and front doors stream it
 * (`berth events`, the Docker API's /events, CRI container events).
 * Subscribers get events published after they subscribed, plus optionally a
 * replay of the recent ones kept in a bounded ring (`since`).
 *
 * A slow subscriber never blocks a publisher: each subscription has a bounded
 * queue and is closed with an overflow flag when it falls too far behind.
 */
export type EventType = 'container' | 'image' | 'network' | 'volume' | 'daemon';

export interface BerthEvent {
  type: EventType;
  action: string;
  namespace: string;
  /** Id of the object (container id, image reference, network id, volume name). */
  id: string;
  attributes: Record<string, string>;
  /** Nanoseconds since the epoch, as a decimal string (docker's timeNano). */
  timeNano: string;
}

export interface Subscription extends AsyncIterable<BerthEvent> {
  close(): void;
  /** True when the subscription was closed because it fell behind. */
  readonly overflowed: boolean;
}

const RING = 1024;
const QUEUE = 4096;

export class EventBus {
  #ring: BerthEvent[] = [];
  #subs = new Set<SubscriptionImpl>();

  publish(e: Omit<BerthEvent, 'timeNano'> & { timeNano?: string }): BerthEvent {
    const ev: BerthEvent = { ...e, timeNano: e.timeNano ?? nowNano() };
    this.#ring.push(ev);
    if (this.#ring.length > RING) this.#ring.shift();
    for (const s of this.#subs) s.push(ev);
    return ev;
  }

  /** Subscribe; `sinceNano` replays buffered events newer than it. */
  subscribe(filter: (e: BerthEvent) => boolean = () => true, sinceNano?: bigint): Subscription {
    const sub = new SubscriptionImpl(filter, () => this.#subs.delete(sub));
    if (sinceNano !== undefined) for (const e of this.#ring) if (BigInt(e.timeNano) > sinceNano) sub.push(e);
    this.#subs.add(sub);
    return sub;
  }
}

let lastNano = 0n;

/**
 * Wall-clock nanoseconds, strictly increasing: the sub-millisecond part comes
 * from a clock that is not aligned with Date.now(), so without the guard two
 * events in a row could go back in time and a `since` replay would miss one.
 */
export function nowNano(): string {
  let n = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  if (n <= lastNano) n = lastNano + 1n;
  lastNano = n;
  return n.toString();
}

class SubscriptionImpl implements Subscription {
  #queue: BerthEvent[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  overflowed = false;
  readonly #filter: (e: BerthEvent) => boolean;
  readonly #onClose: () => void;

  constructor(filter: (e: BerthEvent) => boolean, onClose: () => void) {
    this.#filter = filter;
    this.#onClose = onClose;
  }

  push(e: BerthEvent): void {
    if (this.#closed || !this.#filter(e)) return;
    if (this.#queue.length >= QUEUE) {
      this.overflowed = true;
      this.close();
      return;
    }
    this.#queue.push(e);
    this.#wake?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<BerthEvent> {
    try {
      for (;;) {
        while (this.#queue.length) yield this.#queue.shift()!;
        if (this.#closed) return;
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = undefined;
      }
    } finally {
      this.close();
    }
  }
}
