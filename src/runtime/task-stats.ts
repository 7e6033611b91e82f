import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RuntimeStats } from './runc.ts';
import type { TaskStats } from './task-types.ts';

/**
 * Whether the OOM killer acted in the task's cgroup (cgroupfs paths only;
 * the cgroup exists until the runtime's delete, so ask before that).
 */
export async function oomKilled(bundle: string): Promise<boolean> {
  let cgroupsPath: string | undefined;
  try {
    // Read in place: this runs on every exit, and a thread-pool round trip costs more than the read.
    const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: string } };
    cgroupsPath = spec.linux?.cgroupsPath;
  } catch {
    return false;
  }
  if (!cgroupsPath?.startsWith('/')) return false;
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const file = v2 ? path.join('/sys/fs/cgroup', cgroupsPath, 'memory.events') : path.join('/sys/fs/cgroup/memory', cgroupsPath, 'memory.oom_control');
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No such cgroup: no OOM to report.
  }
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0) > 0;
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
