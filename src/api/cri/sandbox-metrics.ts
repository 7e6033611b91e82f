import { CONTAINER_METRICS, POD_METRICS, type MetricDef } from './metric-descriptors.ts';
import type { CriStatsCache } from './stats-cache.ts';
import type { UnaryHandler } from './types.ts';

const metric = (d: MetricDef, timestamp: string, labels: string[], value: number | bigint) => ({
  name: d.name,
  timestamp,
  metric_type: d.type,
  label_values: labels,
  value: { value: String(typeof value === 'bigint' ? value : Math.max(0, Math.floor(value))) },
});

/**
 * ListPodSandboxMetrics: for each ready pod, its interfaces' counters and
 * its running containers' cpu, memory, processes, writable layer and
 * limits, with the label values ListMetricDescriptors names (pod,
 * namespace, container, id, image[, interface]), from the stats cache as
 * the stats RPCs are.
 */
export function listPodSandboxMetrics(cache: CriStatsCache): UnaryHandler<object, object> {
  return async (ctx) => {
    const { pods, containers } = await cache.read(ctx);
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const out = [];
    for (const pod of pods.values()) {
      const sb = pod.sandbox;
      if (sb.state !== 'ready') continue;
      const base = [sb.name, sb.podNamespace];
      const ts = String(pod.netAtNs);
      const podMetrics = pod.net.flatMap((n) => {
        const labels = [...base, '', sb.id, '', n.name];
        return [
          metric(POD_METRICS.rxBytes, ts, labels, n.rxBytes),
          metric(POD_METRICS.rxErrors, ts, labels, n.rxErrors),
          metric(POD_METRICS.txBytes, ts, labels, n.txBytes),
          metric(POD_METRICS.txErrors, ts, labels, n.txErrors),
        ];
      });
      const containerMetrics = [];
      for (const c of containers.values()) {
        const rec = c.summary.record;
        if (rec.config.pod?.sandboxId !== sb.id || !c.cur) continue;
        const labels = [...base, rec.config.pod.name, rec.id, rec.imageName];
        const t = String(c.cur.timestampNs);
        const r = rec.config.resources ?? {};
        const started = c.summary.state.startedAt ? Date.parse(c.summary.state.startedAt) / 1000 : 0;
        containerMetrics.push({
          container_id: rec.id,
          metrics: [
            metric(CONTAINER_METRICS.lastSeen, now, labels, Date.now() / 1000),
            metric(CONTAINER_METRICS.startTime, t, labels, started),
            metric(CONTAINER_METRICS.cpuUsage, t, labels, c.cur.cpuNs / 1e9),
            metric(CONTAINER_METRICS.memoryUsage, t, labels, c.cur.memoryUsage),
            metric(CONTAINER_METRICS.workingSet, t, labels, c.cur.workingSet),
            metric(CONTAINER_METRICS.rss, t, labels, c.cur.rss),
            metric(CONTAINER_METRICS.processes, t, labels, c.cur.pids),
            ...(c.fs ? [metric(CONTAINER_METRICS.fsUsage, String(c.fs.timestampNs), labels, c.fs.size)] : []),
            metric(CONTAINER_METRICS.specCpuShares, t, labels, r.cpuShares ?? 0),
            metric(CONTAINER_METRICS.specCpuPeriod, t, labels, r.cpuPeriod ?? 0),
            metric(CONTAINER_METRICS.specMemoryLimit, t, labels, r.memory ?? 0),
          ],
        });
      }
      out.push({ pod_sandbox_id: sb.id, metrics: podMetrics, container_metrics: containerMetrics });
    }
    return { pod_metrics: out };
  };
}
