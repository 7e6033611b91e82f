import type { Ctx } from '../../core/context.ts';
import type { BerthEvent } from '../../core/events.ts';
import { isCriContainer, toCriContainerStatus } from './container-view.ts';
import { toCriSandboxStatus } from './sandbox-view.ts';
import type { CriDeps } from './types.ts';

const EVENT_TYPES: Record<string, string> = {
  create: 'CONTAINER_CREATED_EVENT',
  start: 'CONTAINER_STARTED_EVENT',
  die: 'CONTAINER_STOPPED_EVENT',
  destroy: 'CONTAINER_DELETED_EVENT',
};

/**
 * GetContainerEvents (kubelet's evented PLEG): the container service's
 * create, start, die and destroy events of the pods' containers, from the
 * engine's event bus, each with the pod's status and its containers'
 * statuses as they are when the event is sent (containerd sends the same).
 * The stream lasts until the client cancels it or berthd stops; a client
 * too slow to keep up with the bus is ended (the bus drops it) rather than
 * waited for.
 */
export async function streamContainerEvents(ctx: Ctx, deps: CriDeps, send: (ev: object) => boolean | void): Promise<void> {
  const sub = deps.events.subscribe((e) => e.type === 'container' && e.namespace === ctx.namespace && e.action in EVENT_TYPES);
  const onAbort = () => sub.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  // Which sandbox a container belongs to, kept for its deletion event, when the record is gone.
  const sandboxOf = new Map<string, string>();
  try {
    for (const c of await deps.containers.list(ctx)) if (c.record.config.pod) sandboxOf.set(c.record.id, c.record.config.pod.sandboxId);
    for await (const e of sub) {
      const out = await toResponse(ctx, deps, e, sandboxOf).catch(() => undefined);
      if (out) send(out);
      if (e.action === 'destroy') sandboxOf.delete(e.id);
    }
  } finally {
    sub.close();
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

async function toResponse(ctx: Ctx, deps: CriDeps, e: BerthEvent, sandboxOf: Map<string, string>): Promise<object | undefined> {
  if (e.action !== 'destroy' && !sandboxOf.has(e.id)) {
    const c = await deps.containers.get(ctx, e.id).catch(() => undefined);
    if (!c || !isCriContainer(c)) return undefined;
    sandboxOf.set(e.id, c.record.config.pod!.sandboxId);
  }
  const sandboxId = sandboxOf.get(e.id);
  if (!sandboxId) return undefined;
  const sb = await deps.sandboxes.status(ctx, sandboxId).catch(() => undefined);
  const statuses = [];
  for (const c of await deps.containers.list(ctx)) {
    if (c.record.config.pod?.sandboxId !== sandboxId) continue;
    statuses.push(toCriContainerStatus(c, { spec: c.record.imageName, ref: c.record.imageId }, deps.containers.logPath(c.record)));
  }
  return {
    container_id: e.id,
    container_event_type: EVENT_TYPES[e.action],
    created_at: e.timeNano,
    pod_sandbox_status: sb ? toCriSandboxStatus(sb) : null,
    containers_statuses: statuses,
  };
}
