import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { BerthEvent, EventBus, Subscription } from '../../core/events.ts';
import { matchLabel } from '../../runtime/volumes/volumes.ts';

/**
 * The event query both doors serve (`berth events`, docker's
 * `GET /events`): the namespace's events matching docker's filters, from
 * `since` (a replay of the bus's recent ring) until `until`, or until the
 * client leaves. Times are docker's `seconds[.nanoseconds]`; the docker
 * CLI turns durations and RFC 3339 times into that form before sending.
 *
 * Example: `for await (const e of queryEvents(ctx, bus, { filters: { event: ['start'] }, until: '1700000000' })) send(e)`.
 */
export interface EventQuery {
  filters?: Record<string, string[]>;
  since?: string | null;
  until?: string | null;
}

const EVENT_FILTERS = new Set(['type', 'event', 'container', 'image', 'label', 'network', 'volume', 'scope', 'daemon', 'plugin', 'node', 'service', 'secret', 'config']);

/** `seconds[.fraction]` as nanoseconds; InvalidArgument otherwise. */
export function eventTimeNano(t: string): bigint {
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(t.trim());
  if (!m) throw berthError('InvalidArgument', `invalid timestamp: "${t}"`);
  return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

/**
 * Subscribe at once (so nothing published after the call is missed) and
 * check the query before any answer goes out: InvalidArgument for an
 * unknown filter or a bad time.
 */
export function queryEvents(ctx: Ctx, bus: EventBus, q: EventQuery): AsyncIterable<BerthEvent> {
  const filters = q.filters ?? {};
  for (const key of Object.keys(filters)) if (!EVENT_FILTERS.has(key)) throw berthError('InvalidArgument', `invalid filter '${key}'`);
  const since = q.since ? eventTimeNano(q.since) : undefined;
  const until = q.until ? eventTimeNano(q.until) : undefined;
  const sub = bus.subscribe((e) => e.namespace === ctx.namespace && matchEvent(e, filters), since);
  return drain(ctx, sub, until);
}

async function* drain(ctx: Ctx, sub: Subscription, until: bigint | undefined): AsyncGenerator<BerthEvent> {
  const onAbort = () => sub.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal.aborted) sub.close();
  // An `until` in the future ends the stream when that time comes, as dockerd does.
  const timer = until === undefined ? undefined : setTimeout(() => sub.close(), Math.max(0, Number(until / 1_000_000n) - Date.now()));
  try {
    for await (const e of sub) {
      if (until !== undefined && BigInt(e.timeNano) > until) break;
      yield e;
    }
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
    sub.close();
  }
}

/** docker's event filters: every key must match, any value of a key may. */
export function matchEvent(e: BerthEvent, f: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(f)) {
    // As dockerd: every label asked for must be there; for the other keys, one value matching is enough.
    const matches = (v: string): boolean => {
      switch (key) {
        case 'type':
          return e.type === v;
        case 'event':
          return e.action === v || e.action.startsWith(`${v}:`);
        case 'container':
          return e.type === 'container' && (e.id.startsWith(v) || e.attributes.name === v);
        case 'image':
          return e.attributes.image === v || (e.type === 'image' && e.id === v);
        case 'network':
          return e.type === 'network' && (e.id.startsWith(v) || e.attributes.name === v);
        case 'volume':
          return e.type === 'volume' && e.id === v;
        case 'label':
          return matchLabel(e.attributes, v);
        case 'scope':
          return v === 'local';
        default:
          return true;
      }
    };
    const ok = key === 'label' ? values.every(matches) : values.some(matches);
    if (!ok) return false;
  }
  return true;
}
