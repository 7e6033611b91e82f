import type { Ctx } from '../../core/context.ts';
import type { ContainerSummary } from '../../runtime/containers/types.ts';
import type { Router } from './server.ts';
import { byCodeUnit } from '../../core/order.ts';

/** A task as ctr lists it: the container it runs, the pid of its init process, its status. */
export interface TaskView {
  id: string;
  pid: number;
  status: 'created' | 'running' | 'paused' | 'stopped';
}

export interface LeaseView {
  id: string;
  createdAt: string;
  expiresAt?: string;
  labels: Record<string, string>;
}

/** A container's task, if it has one: berth keeps a task from start (or attach's create) until the process exits. */
function taskOf(c: ContainerSummary): TaskView | undefined {
  const { status, pid, taskCreated } = c.state;
  if (status === 'created') return taskCreated && pid ? { id: c.record.id, pid, status: 'created' } : undefined;
  if (!pid) return undefined;
  if (status === 'running' || status === 'restarting') return { id: c.record.id, pid, status: 'running' };
  if (status === 'paused') return { id: c.record.id, pid, status: 'paused' };
  return undefined;
}

/**
 * Tasks and leases of the request's namespace, ctr's `tasks` and `leases`
 * views (a task's kill and ps are the container routes' kill and top; a
 * pod sandbox's pause process is listed, and stays the CRI's to stop):
 *   GET /tasks    -> [{id, pid, status}]
 *   GET /leases   -> [{id, createdAt, expiresAt?, labels}]
 */
export function registerTaskRoutes(
  router: Router,
  deps: {
    containers: { list(ctx: Ctx): Promise<ContainerSummary[]> };
    /** Pod sandboxes, whose pause process is a task too (ctr -n k8s.io lists them beside the pods' containers). */
    sandboxes?: { list(ctx: Ctx): Promise<Array<{ id: string; state: string; pausePid: number }>> };
    leases: { list(ctx: Ctx): Promise<Array<{ id: string; createdAt: Date; expiresAt?: Date; labels: Record<string, string> }>> };
  },
): void {
  router.add('GET', '/tasks', async (req) => {
    const tasks = (await deps.containers.list(req.ctx)).map(taskOf).filter((t) => t !== undefined);
    for (const s of (await deps.sandboxes?.list(req.ctx)) ?? []) if (s.pausePid > 0) tasks.push({ id: s.id, pid: s.pausePid, status: 'running' });
    return tasks.sort((a, b) => byCodeUnit(a.id, b.id));
  });
  router.add('GET', '/leases', async (req): Promise<LeaseView[]> =>
    (await deps.leases.list(req.ctx)).map((l) => ({ id: l.id, createdAt: l.createdAt.toISOString(), expiresAt: l.expiresAt?.toISOString(), labels: l.labels })),
  );
}
