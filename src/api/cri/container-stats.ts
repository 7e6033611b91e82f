import { berthError } from '../../core/errors.ts';
import { criContainer } from './container-lookup.ts';
import { toCriContainerStats } from './stats-view.ts';
import type { CriDeps, UnaryHandler } from './types.ts';
import type { CriStatsCache } from './stats-cache.ts';

/** ContainerStats of one container, from the stats cache; NOT_FOUND for an unknown one. */
export function containerStats(cache: CriStatsCache): UnaryHandler<{ container_id?: string }, object> {
  return async (ctx, req, deps: CriDeps) => {
    const c = await criContainer(ctx, deps, req.container_id);
    const sample = (await cache.read(ctx)).containers.get(c.record.id);
    if (!sample) throw berthError('NotFound', `container "${c.record.id}" has no stats yet`);
    return { stats: toCriContainerStats(sample, deps.snapshotRoot) };
  };
}

/** ListContainerStats: the pods' containers matching the filter (id and sandbox id as prefixes, labels exactly), from the stats cache. */
export function listContainerStats(cache: CriStatsCache): UnaryHandler<{ filter?: { id?: string; pod_sandbox_id?: string; label_selector?: Record<string, string> } }, object> {
  return async (ctx, req, deps) => {
    const f = req.filter ?? {};
    const out = [];
    for (const s of (await cache.read(ctx)).containers.values()) {
      const rec = s.summary.record;
      if (f.id && !rec.id.startsWith(f.id)) continue;
      if (f.pod_sandbox_id && !rec.config.pod!.sandboxId.startsWith(f.pod_sandbox_id)) continue;
      if (f.label_selector && !Object.entries(f.label_selector).every(([k, v]) => rec.config.labels?.[k] === v)) continue;
      out.push(toCriContainerStats(s, deps.snapshotRoot));
    }
    return { stats: out };
  };
}
