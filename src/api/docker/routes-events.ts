import os from 'node:os';
import { readFile } from 'node:fs/promises';
import type { Ctx } from '../../core/context.ts';
import type { BerthEvent, EventBus } from '../../core/events.ts';
import { parseFilters } from '../../core/filters.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import type { NetworkCounters, TaskStats } from '../../runtime/tasks/task-types.ts';
import { queryEvents } from '../http/events.ts';
import { writeStreamed } from '../http/write.ts';
import { flag, ok, type DockerRouter } from './server.ts';

/**
 * `GET /events` (docker's streamed JSON messages, filters, since, until)
 * onto the event bus, and `GET /containers/{id}/stats` (one sample, or one
 * a second while streaming) onto the container service's stats.
 */
export function registerEventRoutes(router: DockerRouter, deps: { events: EventBus; containers: ContainerService }): void {
  router.add('GET', '/events', async (req) => {
    const events = queryEvents(req.ctx, deps.events, { filters: parseFilters(req.query.get('filters')), since: req.query.get('since'), until: req.query.get('until') });
    const res = req.stream('application/json');
    try {
      for await (const e of events) await writeStreamed(res, eventMessage(e));
    } catch (err) {
      if (!req.ctx.signal.aborted) req.ctx.log.warn('events stream failed', { err });
    }
    res.end();
    return undefined;
  });

  router.add('GET', '/containers/:id/stats', async (req) => {
    const stream = req.query.get('stream') === null || flag(req.query.get('stream'));
    const oneShot = flag(req.query.get('one-shot'));
    const sample = async () => {
      const s = await deps.containers.stats(req.ctx, req.params.id);
      return { id: s.record.id, name: s.record.name, stats: s.stats, system: await systemCpuNs(req.ctx) };
    };
    let prev = await sample();
    if (!stream) {
      if (oneShot) return ok(statsView(prev));
      // As dockerd: a second sample a moment later, so the CPU share has a base to compare with.
      await new Promise((r) => setTimeout(r, 500));
      return ok(statsView(await sample(), prev));
    }
    const res = req.stream('application/json');
    try {
      await writeStreamed(res, JSON.stringify(statsView(prev)) + '\n');
      while (!req.ctx.signal.aborted) {
        await new Promise((r) => setTimeout(r, 1000));
        const next = await sample().catch(() => undefined);
        if (!next) break;
        await writeStreamed(res, JSON.stringify(statsView(next, prev)) + '\n');
        prev = next;
      }
    } catch (err) {
      if (!req.ctx.signal.aborted) req.ctx.log.warn('stats stream failed', { err });
    }
    res.end();
    return undefined;
  });
}

/** docker's events message; `timeNano` goes out as a bare integer, which a JS number cannot hold exactly. */
export function eventMessage(e: BerthEvent): string {
  const nano = BigInt(e.timeNano);
  const msg: Record<string, unknown> = {
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: e.attributes },
    scope: 'local',
    time: Number(nano / 1_000_000_000n),
  };
  if (e.type === 'container') Object.assign(msg, { status: e.action, id: e.id, from: e.attributes.image ?? '' });
  return JSON.stringify(msg).slice(0, -1) + `,"timeNano":${nano}}\n`;
}

interface Sample {
  id: string;
  name: string;
  stats: TaskStats;
  system: number;
}

/** The host's CPU time in nanoseconds (the first line of /proc/stat), docker's system_cpu_usage. */
async function systemCpuNs(ctx: Ctx): Promise<number> {
  const text = await readFile('/proc/stat', { encoding: 'utf8', signal: ctx.signal });
  const ticks = text.slice(0, text.indexOf('\n')).split(/\s+/).slice(1, 8).reduce((a, b) => a + Number(b), 0);
  return ticks * (1e9 / 100);
}

function cpuView(s: Sample | undefined) {
  if (!s) return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
  const c = s.stats.cpu;
  return {
    cpu_usage: { total_usage: c.totalNs, percpu_usage: c.perCpuNs, usage_in_kernelmode: c.kernelNs, usage_in_usermode: c.userNs },
    system_cpu_usage: s.system,
    online_cpus: c.perCpuNs.filter((n) => n > 0).length || os.availableParallelism(),
    throttling_data: { periods: 0, throttled_periods: c.throttledPeriods, throttled_time: c.throttledNs },
  };
}

function networksView(n: Record<string, NetworkCounters>) {
  return Object.fromEntries(
    Object.entries(n).map(([name, c]) => [
      name,
      { rx_bytes: c.rxBytes, rx_packets: c.rxPackets, rx_errors: c.rxErrors, rx_dropped: c.rxDropped, tx_bytes: c.txBytes, tx_packets: c.txPackets, tx_errors: c.txErrors, tx_dropped: c.txDropped },
    ]),
  );
}

/** docker's stats JSON for one sample, with the one before it as `precpu_stats`. */
export function statsView(s: Sample, prev?: Sample) {
  const m = s.stats.memory;
  const io = (op: string, value: number) => ({ major: 0, minor: 0, op, value });
  return {
    name: `/${s.name}`,
    id: s.id,
    read: s.stats.read,
    preread: prev?.stats.read ?? '0001-01-01T00:00:00Z',
    pids_stats: { current: s.stats.pids.current, ...(s.stats.pids.limit > 0 ? { limit: s.stats.pids.limit } : {}) },
    blkio_stats: { io_service_bytes_recursive: [io('read', s.stats.blkio.readBytes), io('write', s.stats.blkio.writeBytes)] },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuView(s),
    precpu_stats: cpuView(prev),
    // An unlimited cgroup v1 reports a huge limit: docker shows the host's memory instead.
    memory_stats: { usage: m.usage, max_usage: m.maxUsage, stats: { cache: m.cache, rss: m.rss }, failcnt: m.failcnt, limit: m.limit > 0 && m.limit < os.totalmem() ? m.limit : os.totalmem() },
    // As dockerd: absent for a container without a network namespace of its own.
    ...(s.stats.networks ? { networks: networksView(s.stats.networks) } : {}),
  };
}
