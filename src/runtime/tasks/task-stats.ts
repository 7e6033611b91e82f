import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, readlink, rmdir } from 'node:fs/promises';
import { hasErrno } from '../../core/errors.ts';
import path from 'node:path';
import type { RuntimeStats } from './runc.ts';
import type { NetworkCounters, TaskStats } from './task-types.ts';

function cgroupsPathOf(bundle: string): string | undefined {
  try {
    // Read in place: this runs on every exit, and a thread-pool round trip costs more than the read.
    const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: string } };
    return spec.linux?.cgroupsPath;
  } catch {
    return undefined;
  }
}

const isV2 = () => existsSync('/sys/fs/cgroup/cgroup.controllers');

/**
 * Whether the OOM killer acted in the task's cgroup (cgroupfs paths only;
 * the cgroup exists until the runtime's delete, so ask before that).
 */
export async function oomKilled(bundle: string): Promise<boolean> {
  const cgroupsPath = cgroupsPathOf(bundle);
  if (!cgroupsPath?.startsWith('/')) return false;
  const file = isV2() ? path.join('/sys/fs/cgroup', cgroupsPath, 'memory.events') : path.join('/sys/fs/cgroup/memory', cgroupsPath, 'memory.oom_control');
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No such cgroup: no OOM to report.
  }
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0) > 0;
}

/**
 * Remove the task's own cgroup (the leaf, never a shared parent) where the
 * runtime's delete left it: runc ignores EBUSY while the last processes are
 * still being torn down, which leaks a cgroup per container otherwise.
 */
export async function removeCgroup(bundle: string): Promise<void> {
  const cgroupsPath = cgroupsPathOf(bundle);
  if (!cgroupsPath?.startsWith('/') || cgroupsPath === '/') return;
  const roots = isV2() ? ['/sys/fs/cgroup'] : (await readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((c) => path.join('/sys/fs/cgroup', c));
  // Usually the runtime's delete removed them all: check in place, and remove what is left side by side.
  const left = roots.map((root) => path.join(root, cgroupsPath)).filter((dir) => existsSync(dir));
  await Promise.all(
    left.map(async (dir) => {
      for (let attempt = 0; attempt < 40; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          if (!hasErrno(err, 'EBUSY')) break;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    }),
  );
}

/** Reduce the runtime's cgroup statistics (v1 or v2) to TaskStats. */
export function normaliseStats(raw: RuntimeStats): TaskStats {
  const mem = raw.memory ?? {};
  const memRaw = mem.raw ?? {};
  const io = raw.blkio?.ioServiceBytesRecursive ?? [];
  const sumOp = (op: string) => io.filter((e) => e.op.toLowerCase() === op).reduce((a, e) => a + e.value, 0);
  // cgroup v1 reports "no limit" as a huge page-rounded number; docker shows 0 for none.
  const limit = mem.usage?.limit ?? 0;
  return {
    read: new Date().toISOString(),
    cpu: {
      totalNs: raw.cpu?.usage?.total ?? 0,
      perCpuNs: raw.cpu?.usage?.percpu ?? [],
      userNs: raw.cpu?.usage?.user ?? 0,
      kernelNs: raw.cpu?.usage?.kernel ?? 0,
      throttledPeriods: raw.cpu?.throttling?.throttled_periods ?? 0,
      throttledNs: raw.cpu?.throttling?.throttled_time ?? 0,
    },
    memory: {
      usage: mem.usage?.usage ?? 0,
      limit: limit >= 2 ** 62 ? 0 : limit,
      maxUsage: mem.usage?.max ?? 0,
      cache: mem.cache ?? memRaw.cache ?? memRaw.file ?? 0,
      rss: memRaw.total_rss ?? memRaw.rss ?? memRaw.anon ?? 0,
      failcnt: mem.usage?.failcnt ?? 0,
    },
    pids: { current: raw.pids?.current ?? 0, limit: raw.pids?.limit ?? 0 },
    blkio: { readBytes: sumOp('read'), writeBytes: sumOp('write') },
  };
}

/**
 * The interfaces of process `pid`'s network namespace with their counters,
 * from /proc/PID/net/dev; undefined when the process shares this host's
 * namespace (host networking: docker reports no networks then), has only
 * loopback (--network none) or is gone.
 */
export async function networkCounters(pid: number): Promise<Record<string, NetworkCounters> | undefined> {
  if (!pid) return undefined;
  try {
    const [own, theirs] = await Promise.all([readlink('/proc/self/ns/net'), readlink(`/proc/${pid}/ns/net`)]);
    if (own === theirs) return undefined;
    const counters = parseNetDev(await readFile(`/proc/${pid}/net/dev`, 'utf8'));
    return Object.keys(counters).length ? counters : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/net/dev: two header lines, then `name: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs drop ...`. */
export function parseNetDev(text: string): Record<string, NetworkCounters> {
  const out: Record<string, NetworkCounters> = {};
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (name === 'lo' || f.length < 16) continue;
    out[name] = { rxBytes: f[0], rxPackets: f[1], rxErrors: f[2], rxDropped: f[3], txBytes: f[8], txPackets: f[9], txErrors: f[10], txDropped: f[11] };
  }
  return out;
}
