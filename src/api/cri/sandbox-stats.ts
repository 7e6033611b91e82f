import { berthError } from '../../core/errors.ts';
import type { ContainerSample, CriStatsCache, PodSample } from './stats-cache.ts';
import { toCriPodStats } from './stats-view.ts';
import type { UnaryHandler } from './types.ts';

function containersOf(pod: PodSample, containers: Map<string, ContainerSample>): ContainerSample[] {
  return [...containers.values()].filter((c) => c.summary.record.config.pod?.sandboxId === pod.sandbox.id);
}

/** PodSandboxStats of one sandbox, from the stats cache; NOT_FOUND for an unknown one. */
export function podSandboxStats(cache: CriStatsCache): UnaryHandler<{ pod_sandbox_id?: string }, object> {
  return async (ctx, req, deps) => {
    const sb = await deps.sandboxes.status(ctx, req.pod_sandbox_id ?? '');
    const { pods, containers } = await cache.read(ctx);
    const pod = pods.get(sb.id);
    if (!pod) throw berthError('NotFound', `pod sandbox "${sb.id}" has no stats yet`);
    return { stats: toCriPodStats(pod, containersOf(pod, containers), deps.snapshotRoot) };
  };
}

/** ListPodSandboxStats: the ready sandboxes matching the filter (id prefix, labels exactly), from the stats cache. */
export function listPodSandboxStats(cache: CriStatsCache): UnaryHandler<{ filter?: { id?: string; label_selector?: Record<string, string> } }, object> {
  return async (ctx, req, deps) => {
    const f = req.filter ?? {};
    const { pods, containers } = await cache.read(ctx);
    const out = [];
    for (const pod of pods.values()) {
      const sb = pod.sandbox;
      // A stopped pod has nothing to measure; containerd lists only ready ones.
      if (sb.state !== 'ready') continue;
      if (f.id && !sb.id.startsWith(f.id)) continue;
      if (f.label_selector && !Object.entries(f.label_selector).every(([k, v]) => sb.labels[k] === v)) continue;
      out.push(toCriPodStats(pod, containersOf(pod, containers), deps.snapshotRoot));
    }
    return { stats: out };
  };
}
