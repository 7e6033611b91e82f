import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { ContainerService } from './containers.ts';
import { commandLine, inspectView, listItem } from './container-views.ts';
import type { HealthState } from './health.ts';
import { readLog, type ReadLogOptions } from '../tasks/log-reader.ts';
import { matchLabel } from '../volumes/volumes.ts';

/**
 * The read side of containers as docker shows it, shared by every front
 * door: the `ps` listing with its filters, the inspect view, and docker's
 * log query parameters. The doors differ only in how they send the result.
 */
export interface ContainerQueryDeps {
  containers: ContainerService;
  /** The image config of a container's image (Cmd/Entrypoint/Env in views); undefined when the image is gone. */
  imageConfig(ctx: Ctx, imageId: string): Promise<{ Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] } | undefined>;
  /** A checked container's health, when it has a health check. */
  health?(id: string): HealthState | undefined;
}

export interface ListQuery {
  all?: boolean;
  filters?: Record<string, string[]>;
  size?: boolean;
  limit?: number;
}

/** docker's `ps`: running containers (all with `all` or a status filter), newest first. InvalidArgument for an unknown filter. */
export async function listContainers(ctx: Ctx, deps: ContainerQueryDeps, q: ListQuery) {
  const filters = q.filters ?? {};
  // Checked before any container is, as dockerd does: a bad filter fails on an empty host too.
  for (const key of Object.keys(filters)) if (!FILTERS.has(key)) throw berthError('InvalidArgument', `invalid filter '${key}'`);
  // before/since name containers: those created before (after) them.
  const createdOf = async (ref: string) => Date.parse((await deps.containers.resolve(ctx, ref)).createdAt);
  const before = filters.before?.length ? Math.min(...(await Promise.all(filters.before.map(createdOf)))) : undefined;
  const since = filters.since?.length ? Math.max(...(await Promise.all(filters.since.map(createdOf)))) : undefined;
  const out = [];
  for (const c of await deps.containers.list(ctx)) {
    const running = c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting';
    // As dockerd: a stopped container is listed with `all`, a status filter, or a limit (`ps -n 3`).
    if (!q.all && !running && !filters.status && !(q.limit !== undefined && q.limit > 0)) continue;
    const created = Date.parse(c.record.createdAt);
    if ((before !== undefined && created >= before) || (since !== undefined && created <= since)) continue;
    const img = await deps.imageConfig(ctx, c.record.imageId);
    const item = listItem(c.record, c.state, commandLine(c.record, img));
    const health = running ? deps.health?.(c.record.id) : undefined;
    // As docker: "Up 2 minutes (healthy)"; a check still in its start period shows as "health: starting".
    if (health && c.state.status === 'running') item.Status += health.Status === 'starting' ? ' (health: starting)' : ` (${health.Status})`;
    if (!matchContainer(item, filters, health)) continue;
    out.push(q.size ? { ...item, ...(await deps.containers.sizes(ctx, c.record)) } : item);
  }
  return q.limit !== undefined && q.limit > 0 ? out.slice(0, q.limit) : out;
}

/** docker's container inspect view (NotFound "No such container: x"). */
export async function inspectContainer(ctx: Ctx, deps: ContainerQueryDeps, idOrName: string) {
  const { containers } = deps;
  const c = await containers.get(ctx, idOrName);
  const img = await deps.imageConfig(ctx, c.record.imageId);
  const view = inspectView(c.record, c.state, { cmd: commandLine(c.record, img), logPath: containers.logPath(c.record), bundle: containers.bundleDir(c.record), imageEnv: img?.Env });
  const health = deps.health?.(c.record.id);
  return health ? { ...view, State: { ...view.State, Health: health } } : view;
}

const FILTERS = new Set(['id', 'name', 'status', 'label', 'ancestor', 'exited', 'health', 'volume', 'network', 'publish', 'expose', 'before', 'since', 'is-task']);

/** `80`, `80/tcp` or a range `8000-8080[/udp]` against one port and protocol. */
function portMatches(spec: string, port: number | undefined, proto: string): boolean {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(spec);
  if (!m) throw berthError('InvalidArgument', `invalid filter: port "${spec}"`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  return port !== undefined && port >= from && port <= to && (m[3] ?? 'tcp') === proto;
}

function matchContainer(c: ReturnType<typeof listItem>, f: Record<string, string[]>, health?: HealthState): boolean {
  for (const [key, values] of Object.entries(f)) {
    // As dockerd: a container must carry every label asked for; for the other keys, one value matching is enough.
    const matches = (v: string): boolean => {
      switch (key) {
        case 'id':
          return c.Id.startsWith(v);
        case 'name':
          return c.Names.some((n) => n.slice(1).includes(v.replace(/^\//, '')));
        case 'status':
          return c.State === v;
        case 'label':
          return matchLabel(c.Labels, v);
        case 'ancestor':
          return c.Image === v || c.ImageID === v || c.ImageID.replace('sha256:', '').startsWith(v);
        case 'exited':
          return c.State === 'exited' && c.Status.startsWith(`Exited (${v})`);
        case 'health':
          if (!['starting', 'healthy', 'unhealthy', 'none'].includes(v)) throw berthError('InvalidArgument', `invalid filter 'health=${v}': expected starting, healthy, unhealthy or none`);
          return (health?.Status ?? 'none') === v;
        case 'volume':
          return c.Mounts.some((m) => m.Name === v || m.Source === v || m.Destination === v);
        case 'network':
          return Object.entries(c.NetworkSettings.Networks).some(([name, n]) => name === v || (v.length > 0 && ((n as { NetworkID?: string }).NetworkID ?? '').startsWith(v)));
        case 'publish':
          return c.Ports.some((p) => p.PublicPort !== undefined && portMatches(v, p.PublicPort, p.Type));
        case 'expose':
          return c.Ports.some((p) => portMatches(v, p.PrivatePort, p.Type));
        case 'is-task':
          // No swarm: no container is a task.
          return v === 'false';
        case 'before':
        case 'since':
          return true;
        default:
          throw berthError('InvalidArgument', `invalid filter '${key}'`);
      }
    };
    const ok = key === 'label' ? values.every(matches) : values.some(matches);
    if (!ok) return false;
  }
  return true;
}

const bool = (v: string | null) => v === '1' || v === 'true';

/** docker's log query (`tail`, `since`, `until`, `stdout`, `stderr`) as reader options; `follow` is the caller's. */
function logQuery(q: URLSearchParams): Omit<ReadLogOptions, 'follow' | 'stop'> {
  const since = q.get('since');
  const until = q.get('until');
  return {
    tail: tailCount(q.get('tail')),
    since: since ? new Date(Number(since) * 1000) : undefined,
    until: until ? new Date(Number(until) * 1000) : undefined,
    stdout: q.get('stdout') === null ? true : bool(q.get('stdout')),
    stderr: q.get('stderr') === null ? true : bool(q.get('stderr')),
  };
}

/** `tail`: all, or a number of lines; a negative number means all, as with docker. */
function tailCount(tail: string | null): number | undefined {
  if (tail === null || tail === '' || tail === 'all') return undefined;
  const n = Number(tail);
  if (!Number.isInteger(n)) throw berthError('InvalidArgument', `invalid tail "${tail}": expected a number of lines or "all"`);
  return n < 0 ? undefined : n;
}

/**
 * A container's log as docker's logs endpoint reads it (`follow`, `tail`,
 * `since`, `until`, `stdout`, `stderr` from the query). NotFound before any
 * record is read; following ends once the container is not running
 * (restarts included) or ctx aborts.
 */
export async function containerLog(ctx: Ctx, containers: ContainerService, idOrName: string, q: URLSearchParams) {
  const c = await containers.get(ctx, idOrName);
  const follow = bool(q.get('follow'));
  const opts = logQuery(q);
  const stop = follow ? containers.wait(ctx, c.record.id, 'not-running').catch(() => undefined) : undefined;
  return { record: c.record, records: readLog(ctx, containers.logFile(c.record), { ...opts, follow, stop }) };
}
