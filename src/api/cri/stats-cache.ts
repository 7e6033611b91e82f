import type { Ctx } from '../../core/context.ts';
import type { Subscription } from '../../core/events.ts';
import { withCtx } from '../../core/context.ts';
import type { ContainerSummary } from '../../runtime/containers/containers.ts';
import type { SandboxInfo } from '../../runtime/sandboxes/sandbox-types.ts';
import { cgroupUsageOf, netDevOf, type CgroupUsage } from '../../runtime/tasks/cgroup-usage.ts';
import type { CriDeps } from './types.ts';

/** Container events after which the samples are out of date. */
const CHANGES = new Set(['create', 'start', 'die', 'destroy']);

export interface ContainerSample {
  summary: ContainerSummary;
  cur?: CgroupUsage;
  prev?: CgroupUsage;
  fs?: { size: number; inodes: number; timestampNs: bigint };
}

export interface PodSample {
  sandbox: SandboxInfo;
  cur?: CgroupUsage;
  prev?: CgroupUsage;
  net: ReturnType<typeof netDevOf>;
  netAtNs: bigint;
}

/**
 * The CRI's stats (ContainerStats, ListContainerStats, PodSandboxStats,
 * ListPodSandboxStats) come from here: one sweep over the pods and their
 * containers every `periodMs`, reading cgroupfs (cgroup-usage.ts) and the
 * pods' /proc/<pause>/net/dev, with the writable layers walked every
 * `fsEveryN` sweeps. A call reads the last sweep, so a kubelet asking for 50
 * containers costs no reads at all. Two sweeps give usage_nano_cores.
 * The sweeps start with the first call and stop after `idleMs` without one;
 * the first call after that waits for one sweep, as does a call after a
 * change (see `read`).
 */
export class CriStatsCache {
  readonly #deps: CriDeps;
  readonly #periodMs: number;
  readonly #idleMs: number;
  readonly #fsEveryN: number;
  #containers = new Map<string, ContainerSample>();
  #pods = new Map<string, PodSample>();
  #timer: NodeJS.Timeout | undefined;
  #sweep: Promise<void> | undefined;
  #lastUse = 0;
  #sweeps = 0;
  #seq = 0;
  #wantSeq = 0;
  #doneSeq = 0;
  #sub: Subscription | undefined;
  #fs: Promise<void> | undefined;

  constructor(deps: CriDeps, opts: { periodMs?: number; idleMs?: number; fsEveryN?: number } = {}) {
    this.#deps = deps;
    this.#periodMs = opts.periodMs ?? 1000;
    this.#idleMs = opts.idleMs ?? 120_000;
    this.#fsEveryN = opts.fsEveryN ?? 10;
  }

  /**
   * The latest samples. When something changed since the last sweep (a
   * container or pod made, started, stopped or removed: `invalidate`, or a
   * container event on the bus), the call waits for a sweep that began
   * after the change, so what was just started is listed with its usage.
   */
  async read(ctx: Ctx): Promise<{ containers: Map<string, ContainerSample>; pods: Map<string, PodSample> }> {
    this.#lastUse = Date.now();
    if (!this.#timer) {
      this.#timer = setInterval(() => {
        if (Date.now() - this.#lastUse > this.#idleMs) return this.close();
        void this.#run(ctx).catch((err) => ctx.log.debug('stats sweep failed', { err: (err as Error).message }));
      }, this.#periodMs);
      this.#timer.unref();
      this.#sub = this.#deps.events.subscribe((e) => e.type === 'container' && e.namespace === ctx.namespace && CHANGES.has(e.action));
      void (async () => {
        for await (const _ of this.#sub!) this.invalidate();
      })();
      this.invalidate();
    }
    // Only the changes known now are waited for: under constant churn a call still ends after a sweep or two.
    const want = this.#wantSeq;
    while (this.#doneSeq < want) await this.#run(ctx);
    return { containers: this.#containers, pods: this.#pods };
  }

  /** Something the samples show changed: the next read waits for a new sweep. */
  invalidate(): void {
    this.#wantSeq = ++this.#seq;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sub?.close();
    this.#sub = undefined;
  }

  #run(ctx: Ctx): Promise<void> {
    // The sweep outlives the call that started it: it must not stop when that call's client leaves.
    const bg = withCtx(ctx, { signal: this.#deps.shutdown });
    this.#sweep ??= (async () => {
      const seq = this.#seq;
      await this.#once(bg);
      this.#doneSeq = Math.max(this.#doneSeq, seq);
    })().finally(() => (this.#sweep = undefined));
    return this.#sweep;
  }

  async #once(ctx: Ctx): Promise<void> {
    const sweep = this.#sweeps++;
    const [all, sandboxes] = await Promise.all([this.#deps.containers.list(ctx), this.#deps.sandboxes.list(ctx)]);
    const containers = new Map<string, ContainerSample>();
    for (const c of all) {
      if (!c.record.config.pod) continue;
      const old = this.#containers.get(c.record.id);
      const running = c.state.status === 'running' || c.state.status === 'paused';
      const cur = running && c.state.pid ? cgroupUsageOf(c.state.pid) : undefined;
      containers.set(c.record.id, { summary: c, cur, prev: cur ? old?.cur : undefined, fs: old?.fs });
    }
    const pods = new Map<string, PodSample>();
    for (const sb of sandboxes) {
      const old = this.#pods.get(sb.id);
      const cur = sb.state === 'ready' && sb.pausePid ? cgroupUsageOf(sb.pausePid) : undefined;
      const net = sb.pausePid && sb.netnsPath ? netDevOf(sb.pausePid) : [];
      pods.set(sb.id, { sandbox: sb, cur, prev: cur ? old?.cur : undefined, net, netAtNs: BigInt(Date.now()) * 1_000_000n });
    }
    this.#containers = containers;
    this.#pods = pods;
    if (sweep % this.#fsEveryN === 0 && !this.#fs) {
      // Walking writable layers is the slow part: in the background, never holding a sweep up.
      this.#fs = this.#walkLayers(ctx, [...containers.values()]).finally(() => (this.#fs = undefined));
      if (sweep === 0) await this.#fs;
    }
  }

  async #walkLayers(ctx: Ctx, samples: ContainerSample[]): Promise<void> {
    for (const s of samples) {
      const u = await this.#deps.containers.writableLayerUsage(ctx, s.summary.record).catch(() => undefined);
      if (!u) continue;
      const fs = { size: u.size, inodes: u.inodes, timestampNs: BigInt(Date.now()) * 1_000_000n };
      s.fs = fs;
      const now = this.#containers.get(s.summary.record.id);
      if (now) now.fs = fs;
    }
  }
}
