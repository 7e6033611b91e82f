import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A process's cgroup usage read straight from cgroupfs (v1 or v2), found
 * through /proc/<pid>/cgroup: a few small reads and no runtime process, so
 * it can sample many containers often (`runc events --stats` spawns a
 * process per container). Paths in /proc/<pid>/cgroup are relative to our
 * own cgroup namespace, which is the one /sys/fs/cgroup shows.
 */
export interface CgroupUsage {
  /** Nanoseconds since the epoch of the sample. */
  timestampNs: bigint;
  /** CPU time of the whole cgroup, in ns. */
  cpuNs: number;
  memoryUsage: number;
  /** Usage less inactive file pages: what the kubelet evicts on. */
  workingSet: number;
  rss: number;
  pageFaults: number;
  majorPageFaults: number;
  /** Memory limit (0: none) for available_bytes. */
  memoryLimit: number;
  /** Processes (tasks) in the cgroup. */
  pids: number;
}

const ROOT = '/sys/fs/cgroup';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function kv(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out.set(k, Number(v));
  }
  return out;
}

/** The cgroup paths of a process by controller ("" for the v2 unified one). */
function cgroupsOf(pid: number): Map<string, string> | undefined {
  const text = read(`/proc/${pid}/cgroup`);
  if (text === undefined) return undefined;
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1].split(',')) out.set(c, m[2]);
  }
  return out;
}

/** Usage of the cgroups of `pid`; undefined when the process is gone. */
export function cgroupUsageOf(pid: number): CgroupUsage | undefined {
  if (!(pid > 0)) return undefined;
  const groups = cgroupsOf(pid);
  if (!groups) return undefined;
  const timestampNs = BigInt(Date.now()) * 1_000_000n;
  const unlimited = (n: number) => (n >= 2 ** 62 ? 0 : n);
  if (groups.has('memory') || groups.has('cpuacct')) {
    const mem = path.join(ROOT, 'memory', groups.get('memory') ?? '/');
    const cpu = path.join(ROOT, groups.has('cpuacct') && existsDir(path.join(ROOT, 'cpuacct')) ? 'cpuacct' : 'cpu,cpuacct', groups.get('cpuacct') ?? '/');
    const stat = kv(read(path.join(mem, 'memory.stat')));
    const usage = Number(read(path.join(mem, 'memory.usage_in_bytes')) ?? 0);
    const inactive = stat.get('total_inactive_file') ?? 0;
    return {
      timestampNs,
      cpuNs: Number(read(path.join(cpu, 'cpuacct.usage')) ?? 0),
      memoryUsage: usage,
      workingSet: Math.max(0, usage - inactive),
      rss: stat.get('total_rss') ?? 0,
      pageFaults: stat.get('total_pgfault') ?? 0,
      majorPageFaults: stat.get('total_pgmajfault') ?? 0,
      memoryLimit: unlimited(Number(read(path.join(mem, 'memory.limit_in_bytes')) ?? 0)),
      pids: Number(read(path.join(ROOT, 'pids', groups.get('pids') ?? '/', 'pids.current')) ?? 0),
    };
  }
  const dir = path.join(ROOT, groups.get('') ?? '/');
  const stat = kv(read(path.join(dir, 'memory.stat')));
  const usage = Number(read(path.join(dir, 'memory.current')) ?? 0);
  const max = read(path.join(dir, 'memory.max'))?.trim();
  return {
    timestampNs,
    cpuNs: (kv(read(path.join(dir, 'cpu.stat'))).get('usage_usec') ?? 0) * 1000,
    memoryUsage: usage,
    workingSet: Math.max(0, usage - (stat.get('inactive_file') ?? 0)),
    rss: stat.get('anon') ?? 0,
    pageFaults: stat.get('pgfault') ?? 0,
    majorPageFaults: stat.get('pgmajfault') ?? 0,
    memoryLimit: !max || max === 'max' ? 0 : Number(max),
    pids: Number(read(path.join(dir, 'pids.current')) ?? 0),
  };
}

function existsDir(dir: string): boolean {
  return existsSync(dir);
}

/** Interface counters of the network namespace `pid` is in (/proc/<pid>/net/dev), loopback left out. */
export function netDevOf(pid: number): Array<{ name: string; rxBytes: number; rxErrors: number; txBytes: number; txErrors: number }> {
  const text = read(`/proc/${pid}/net/dev`);
  if (!text) return [];
  const out = [];
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    out.push({ name: m[1], rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10] });
  }
  return out;
}
