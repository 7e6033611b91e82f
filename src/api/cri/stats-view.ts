import type { CgroupUsage } from '../../runtime/tasks/cgroup-usage.ts';
import type { ContainerSample, PodSample } from './stats-cache.ts';

const u64 = (n: number | bigint) => ({ value: String(n) });

export function cpuUsage(cur: CgroupUsage | undefined, prev: CgroupUsage | undefined) {
  if (!cur) return null;
  const dt = prev ? Number(cur.timestampNs - prev.timestampNs) : 0;
  return {
    timestamp: String(cur.timestampNs),
    usage_core_nano_seconds: u64(cur.cpuNs),
    // A rate needs two samples: absent until the second sweep, as containerd leaves it.
    usage_nano_cores: prev && dt > 0 ? u64(Math.max(0, Math.round(((cur.cpuNs - prev.cpuNs) / dt) * 1e9))) : null,
  };
}

export function memoryUsage(cur: CgroupUsage | undefined) {
  if (!cur) return null;
  return {
    timestamp: String(cur.timestampNs),
    working_set_bytes: u64(cur.workingSet),
    available_bytes: u64(cur.memoryLimit ? Math.max(0, cur.memoryLimit - cur.workingSet) : 0),
    usage_bytes: u64(cur.memoryUsage),
    rss_bytes: u64(cur.rss),
    page_faults: u64(cur.pageFaults),
    major_page_faults: u64(cur.majorPageFaults),
  };
}

/** ContainerStats: attributes, cpu and memory of its cgroup, its writable layer. */
export function toCriContainerStats(s: ContainerSample, snapshotRoot: string) {
  const rec = s.summary.record;
  return {
    attributes: {
      id: rec.id,
      metadata: { name: rec.config.pod?.name ?? rec.name, attempt: rec.config.pod?.attempt ?? 0 },
      labels: { ...rec.config.labels },
      annotations: { ...rec.config.annotations },
    },
    cpu: cpuUsage(s.cur, s.prev),
    memory: memoryUsage(s.cur),
    writable_layer: s.fs ? { timestamp: String(s.fs.timestampNs), fs_id: { mountpoint: snapshotRoot }, used_bytes: u64(s.fs.size), inodes_used: u64(s.fs.inodes) } : null,
  };
}

/** The sum of the pause process's cgroup and its containers'. */
function podUsage(p: PodSample, containers: ContainerSample[], prev: boolean): CgroupUsage | undefined {
  const parts = [prev ? p.prev : p.cur, ...containers.map((c) => (prev ? c.prev : c.cur))].filter((x): x is CgroupUsage => !!x);
  if (!parts.length || (prev && !p.prev)) return undefined;
  const sum = (f: (u: CgroupUsage) => number) => parts.reduce((n, u) => n + f(u), 0);
  return {
    timestampNs: parts[0].timestampNs,
    cpuNs: sum((u) => u.cpuNs),
    memoryUsage: sum((u) => u.memoryUsage),
    workingSet: sum((u) => u.workingSet),
    rss: sum((u) => u.rss),
    pageFaults: sum((u) => u.pageFaults),
    majorPageFaults: sum((u) => u.majorPageFaults),
    memoryLimit: 0,
    pids: sum((u) => u.pids),
  };
}

/** PodSandboxStats: the pod's cpu and memory (pause and containers), its network, process count and its containers' stats. */
export function toCriPodStats(p: PodSample, containers: ContainerSample[], snapshotRoot: string) {
  const sb = p.sandbox;
  const cur = podUsage(p, containers, false);
  const prev = podUsage(p, containers, true);
  const ifaces = p.net.map((n) => ({ name: n.name, rx_bytes: u64(n.rxBytes), rx_errors: u64(n.rxErrors), tx_bytes: u64(n.txBytes), tx_errors: u64(n.txErrors) }));
  return {
    attributes: { id: sb.id, metadata: { name: sb.name, uid: sb.uid, namespace: sb.podNamespace, attempt: sb.attempt }, labels: sb.labels, annotations: sb.annotations },
    linux: {
      cpu: cpuUsage(cur, prev),
      memory: memoryUsage(cur),
      network: ifaces.length ? { timestamp: String(p.netAtNs), default_interface: ifaces.find((i) => i.name === 'eth0') ?? ifaces[0], interfaces: ifaces } : null,
      process: cur ? { timestamp: String(cur.timestampNs), process_count: u64(cur.pids) } : null,
      containers: containers.map((c) => toCriContainerStats(c, snapshotRoot)),
    },
  };
}
