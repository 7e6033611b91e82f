import type { Ctx } from '../core/context.ts';
import { withCtx } from '../core/context.ts';
import type { EventBus } from '../core/events.ts';
import type { ImageConfigFields } from '../core/images.ts';
import type { ImageService } from '../images/service.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { listNamespaces } from '../metadata/namespaces.ts';
import type { ContainerService } from '../runtime/containers/containers.ts';
import { HealthMonitor, effectiveHealthcheck, type HealthState } from '../runtime/containers/health.ts';

/**
 * Health checks follow the container events: checking starts at `start`,
 * stops at `die` and is forgotten at `destroy`; containers already running
 * when berthd starts are picked up once recovery is done.
 */
export function wireHealth(opts: { containers: ContainerService; images: ImageService; events: EventBus; db: MetadataDb; startCtx: Ctx }): { health(id: string): HealthState | undefined; close(): void } {
  const { containers, images, events } = opts;
  // An image's config never changes under its id: every start of a container of it need not read it again.
  const imageChecks = new Map<string, ImageConfigFields['Healthcheck']>();
  const imageCheck = async (ctx: Ctx, imageId: string) => {
    if (imageChecks.has(imageId)) return imageChecks.get(imageId);
    const img = await images.find(ctx, imageId).catch(() => undefined);
    const check = (img?.config as { config?: ImageConfigFields } | undefined)?.config?.Healthcheck;
    if (img) {
      if (imageChecks.size >= 256) imageChecks.delete(imageChecks.keys().next().value!);
      imageChecks.set(imageId, check);
    }
    return check;
  };
  const health = new HealthMonitor({
    probe: (ctx, id, cmd, timeoutMs) => containers.execSync(ctx, id, cmd, { timeoutMs, maxOutput: 4096 }),
    async configOf(ctx, id) {
      const c = await containers.get(ctx, id);
      return effectiveHealthcheck(await imageCheck(ctx, c.record.imageId), c.record.config.healthcheck);
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
