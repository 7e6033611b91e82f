import type { Ctx } from '../../core/context.ts';
import type { BerthEvent } from '../../core/events.ts';
import type { SandboxEvent } from '../../runtime/sandboxes/sandbox-types.ts';
import { isCriContainer, toCriContainerStatus } from './container-view.ts';
import { toCriSandboxStatus } from './sandbox-view.ts';
import type { CriDeps } from './types.ts';

const EVENT_TYPES: Record<string, string> = {
  create: 'CONTAINER_CREATED_EVENT',
  start: 'CONTAINER_STARTED_EVENT',
  die: 'CONTAINER_STOPPED_EVENT',
  destroy: 'CONTAINER_DELETED_EVENT',
};

const SANDBOX_EVENT_TYPES: Record<SandboxEvent['action'], string> = {
  created: 'CONTAINER_CREATED_EVENT',
  started: 'CONTAINER_STARTED_EVENT',
  stopped: 'CONTAINER_STOPPED_EVENT',
  deleted: 'CONTAINER_DELETED_EVENT',
};

/** Sandbox events waiting to be sent beyond which a client is too slow and its stream ends, as the bus ends a subscriber. */
const MAX_PENDING_SANDBOX_EVENTS = 1024;

/**
 * GetContainerEvents (kubelet's evented PLEG): the container service's
 * create, start, die and destroy events of the pods' containers, from the
 * engine's event bus, and the sandboxes' own (created and started when a
 * run is ready, stopped when the pause process exits, deleted when
 * removed), with the sandbox's id as the container's, as containerd 1.7
 * sends them. Each carries the pod's status (none once it is deleted) and
 * its containers' statuses as they are when the event is sent. The stream
 * lasts until the client cancels it or berthd stops; a client too slow to
 * keep up is ended rather than waited for.
 */
export async function streamContainerEvents(ctx: Ctx, deps: CriDeps, send: (ev: object) => boolean | void): Promise<void> {
  const sub = deps.events.subscribe((e) => e.type === 'container' && e.namespace === ctx.namespace && e.action in EVENT_TYPES);
  const onAbort = () => sub.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  // Both sources go through one chain, so that events are sent in the order they happened.
  let chain = Promise.resolve();
  let pending = 0;
  const unsubscribe = deps.sandboxes.subscribe((e) => {
    if (e.namespace !== ctx.namespace) return;
    if (++pending > MAX_PENDING_SANDBOX_EVENTS) return sub.close();
    chain = chain
      .then(() => toSandboxResponse(ctx, deps, e))
      .then((out) => void send(out), () => {})
      .finally(() => pending--);
  });
  // Which sandbox a container belongs to, kept for its deletion event, when the record is gone.
  const sandboxOf = new Map<string, string>();
  try {
    for (const c of await deps.containers.list(ctx)) if (c.record.config.pod) sandboxOf.set(c.record.id, c.record.config.pod.sandboxId);
    for await (const e of sub) {
      chain = chain.then(async () => {
        const out = await toResponse(ctx, deps, e, sandboxOf).catch(() => undefined);
        if (out) send(out);
        if (e.action === 'destroy') sandboxOf.delete(e.id);
      });
      await chain;
    }
  } finally {
    unsubscribe();
    sub.close();
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

async function toSandboxResponse(ctx: Ctx, deps: CriDeps, e: SandboxEvent): Promise<object> {
  const sb = e.action === 'deleted' ? undefined : await deps.sandboxes.status(ctx, e.id).catch(() => undefined);
  return {
    container_id: e.id,
    container_event_type: SANDBOX_EVENT_TYPES[e.action],
    created_at: e.timeNano,
    pod_sandbox_status: sb ? toCriSandboxStatus(sb) : null,
    containers_statuses: await containerStatuses(ctx, deps, e.id),
  };
}

async function containerStatuses(ctx: Ctx, deps: CriDeps, sandboxId: string): Promise<object[]> {
  const statuses = [];
  for (const c of await deps.containers.list(ctx)) {
    if (c.record.config.pod?.sandboxId !== sandboxId) continue;
    statuses.push(toCriContainerStatus(c, { spec: c.record.imageName, ref: c.record.imageId }, deps.containers.logPath(c.record)));
  }
  return statuses;
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
  return {
    container_id: e.id,
    container_event_type: EVENT_TYPES[e.action],
    created_at: e.timeNano,
    pod_sandbox_status: sb ? toCriSandboxStatus(sb) : null,
    containers_statuses: await containerStatuses(ctx, deps, sandboxId),
  };
}
