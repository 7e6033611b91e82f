import type { Ctx } from '../core/context.ts';
import { withCtx } from '../core/context.ts';
import type { EventBus } from '../core/events.ts';
import type { ImageConfigFields } from '../core/images.ts';
import type { ImageService } from '../images/service.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { listNamespaces } from '../metadata/namespaces.ts';
import type { ContainerService } from '../runtime/containers.ts';
import { HealthMonitor, effectiveHealthcheck, type HealthState } from '../runtime/health.ts';

/**
 * Health checks follow the container events: checking starts at `start`,
 * stops at `die` and is forgotten at `destroy`; containers already running
 * when berthd starts are picked up once recovery is done.
 */
export function wireHealth(opts: { containers: ContainerService; images: ImageService; events: EventBus; db: MetadataDb; startCtx: Ctx }): { health(id: string): HealthState | undefined; close(): void } {
  const { containers, images, events } = opts;
  const health = new HealthMonitor({
    probe: (ctx, id, cmd, timeoutMs) => containers.execSync(ctx, id, cmd, { timeoutMs, maxOutput: 4096 }),
    async configOf(ctx, id) {
      const c = await containers.get(ctx, id);
      const img = await images.find(ctx, c.record.imageId).catch(() => undefined);
      const imageCfg = (img?.config as { config?: ImageConfigFields } | undefined)?.config;
      return effectiveHealthcheck(imageCfg?.Healthcheck, c.record.config.healthcheck);
    },
    events,
  });
  const sub = events.subscribe((e) => e.type === 'container' && (e.action === 'start' || e.action === 'die' || e.action === 'destroy'));
  void (async () => {
    for await (const e of sub) {
      const ctx = withCtx(opts.startCtx, { namespace: e.namespace });
      if (e.action === 'start') void health.watch(ctx, e.id);
      else if (e.action === 'die') health.unwatch(e.id);
      else health.forget(e.id);
    }
  })();
  void (async () => {
    for (const namespace of new Set(['default', ...(await listNamespaces(opts.startCtx, opts.db))])) {
      const ctx = withCtx(opts.startCtx, { namespace });
      for (const c of await containers.list(ctx)) if (c.state.status === 'running') await health.watch(ctx, c.record.id);
    }
  })().catch((err: unknown) => opts.startCtx.log.warn('cannot start health checks of running containers', { err }));
  return {
    health: (id) => health.health(id),
    close() {
      sub.close();
      health.close();
    },
  };
}
