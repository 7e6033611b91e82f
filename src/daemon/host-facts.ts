import { readFile } from 'node:fs/promises';
import os from 'node:os';

/** /proc/self/limits row titles by docker's ulimit names. */
const limitNames: Record<string, string> = {
  'Max cpu time': 'cpu',
  'Max file size': 'fsize',
  'Max data size': 'data',
  'Max stack size': 'stack',
  'Max core file size': 'core',
  'Max resident set': 'rss',
  'Max processes': 'nproc',
  'Max open files': 'nofile',
  'Max locked memory': 'memlock',
  'Max address space': 'as',
  'Max file locks': 'locks',
  'Max pending signals': 'sigpending',
  'Max msgqueue size': 'msgqueue',
  'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio',
  'Max realtime timeout': 'rttime',
};

/**
 * berthd's hard rlimits (finite ones only). A container may not ask for
 * more: runc would fail to set them (root here may lack CAP_SYS_RESOURCE).
 */
export async function hardRlimits(): Promise<Record<string, number>> {
  const text = await readFile('/proc/self/limits', 'utf8');
  const out: Record<string, number> = {};
  for (const line of text.split('\n').slice(1)) {
    const title = Object.keys(limitNames).find((t) => line.startsWith(t));
    if (!title) continue;
    const fields = line.slice(title.length).trim().split(/\s+/);
    const hard = fields[1];
    if (hard && /^\d+$/.test(hard)) out[limitNames[title]] = Number(hard);
  }
  return out;
}

/** The capability mask berthd runs with (CapEff): what "all capabilities" can mean for a container. */
export async function capabilityMask(): Promise<string> {
  const status = await readFile('/proc/self/status', 'utf8');
  return /^CapEff:\s+([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
}

/** berthd's own oom_score_adj: the floor of a container's, as lowering it needs CAP_SYS_RESOURCE. */
export async function ownOomScoreAdj(): Promise<number> {
  const text = await readFile('/proc/self/oom_score_adj', 'utf8').catch(() => '0');
  return Number(text.trim()) || 0;
}

/** Whether the hugetlb cgroup controller is there (v1 hierarchy or v2 root); without it runc cannot apply any hugepage limit. */
export async function hugetlbController(): Promise<boolean> {
  const v2 = await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8').catch(() => undefined);
  if (v2 !== undefined) return v2.split(/\s+/).includes('hugetlb');
  return readFile('/sys/fs/cgroup/hugetlb/cgroup.procs', 'utf8').then(() => true, () => false);
}

/** The host as `info` shows it: kernel, distribution, CPUs, memory, cgroup version. */
export async function hostDescription(): Promise<Record<string, unknown>> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? 'Linux';
  // A v2-only host has cgroup.controllers at the root; a hybrid one (v1 controllers plus a
  // v2 mount) is driven through v1.
  const v2 = await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8').then(() => true, () => false);
  return {
    kernelVersion: os.release(),
    operatingSystem: pretty,
    osType: 'linux',
    architecture: os.machine(),
    cpus: os.availableParallelism(),
    memTotal: os.totalmem(),
    name: os.hostname(),
    cgroupVersion: v2 ? '2' : '1',
  };
}
