import { chainIds } from '../core/chain-id.ts';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { isDigest } from '../core/digest.ts';
import { kindOf } from '../core/errors.ts';
import { MediaTypes, isConfigType, isIndexType, isManifestType } from '../core/media-types.ts';
import type { ContentStore } from '../content/types.ts';
import type { MetadataContainerStore } from './containers.ts';
import type { MetadataImageStore } from './images.ts';
import type { LeaseResource, MetadataLeaseManager } from './leases.ts';

/** Manifests, indexes and configs larger than this are not parsed (treated as leaves). */
export const GC_MAX_MANIFEST_BYTES = 4 << 20;
/** Default age after which an abandoned ingest or an unreferenced active snapshot is removed. */
export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;

export interface GcResult {
  content: { count: number; bytes: number; removed: Digest[] };
  ingests: { count: number; bytes: number; removed: string[] };
  snapshots: { count: number; bytes: number; removed: { snapshotter: string; key: string }[] };
  /** Expired leases deleted. */
  leases: number;
}

/**
 * The part of snapshots/types.ts `Snapshotter` that GC uses, restated here
 * because metadata/ sits above snapshots/ in the layering; every Snapshotter
 * satisfies it.
 */
export interface GcSnapshotInfo {
  name: string;
  kind: 'active' | 'view' | 'committed';
  parent?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface GcSnapshotter {
  readonly name: string;
  walk(ctx: Ctx, fn: (info: GcSnapshotInfo) => void | Promise<void>): Promise<void>;
  usage(ctx: Ctx, key: string): Promise<{ size: number }>;
  /** Conflict if the snapshot has children. */
  remove(ctx: Ctx, key: string): Promise<void>;
}

export interface GcDeps {
  images: MetadataImageStore;
  containers: MetadataContainerStore;
  leases: MetadataLeaseManager;
  content: ContentStore;
  snapshotters: readonly GcSnapshotter[];
  /** How old an unleased ingest or active snapshot must be before it counts as abandoned. */
  graceMs?: number;
  now?: () => Date;
}

const GC_REF_CONTENT = 'containerd.io/gc.ref.content.';
const GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot.';

interface Marks {
  content: Set<string>;
  /** Chain IDs from image configs: committed snapshot names in any snapshotter. */
  chainIds: Set<string>;
  /** Snapshots named by GC labels. */
  snapshots: { snapshotter?: string; key: string }[];
}

interface Node {
  digest: Digest;
  /** Unknown for lease roots: the blob is sniffed. */
  mediaType?: string;
}

/**
 * Mark-and-sweep garbage collection: the one place that decides what is
 * garbage (containerd core/metadata/gc).
 *
 * Roots: every image target in every namespace; the resources of unexpired
 * leases; every container's snapshot (with its snapshotter). From a content
 * root the walk follows index -> manifests (those present locally) ->
 * config + layers; a config's rootfs.diff_ids give chain IDs, the names of
 * the image's committed snapshots in any snapshotter. containerd's
 * `containerd.io/gc.ref.*` labels on a blob are followed too. A kept snapshot
 * keeps its parent chain. Unknown media types are leaves; manifests are read with
 * a 4 MiB cap.
 *
 * Sweep: unmarked blobs, then abandoned ingests (unleased and untouched for
 * `graceMs`), then unmarked snapshots children first. Anything created after
 * the mark began is spared, as are active snapshots younger than `graceMs`
 * (an unpack in progress). Roots are read again just before the sweep, which
 * narrows the window in which a root added meanwhile could be missed;
 * callers that add content to a lease add it before they rely on it.
 *
 * One collection runs at a time; a call made while one runs joins it.
 *
 * Example:
 *   const gc = new GarbageCollector({ images, containers, leases, content, snapshotters: [overlay] });
 *   const r = await gc.collect(ctx);   // r.content.bytes + r.snapshots.bytes reclaimed
 */
export class GarbageCollector {
  readonly #d: GcDeps;
  readonly #graceMs: number;
  readonly #now: () => Date;
  #running: Promise<GcResult> | undefined;

  constructor(deps: GcDeps) {
    this.#d = deps;
    this.#graceMs = deps.graceMs ?? DEFAULT_GC_GRACE_MS;
    this.#now = deps.now ?? (() => new Date());
  }

  collect(ctx: Ctx, opts: { dryRun?: boolean } = {}): Promise<GcResult> {
    if (this.#running) return this.#running;
    const run = this.#collect(ctx, opts.dryRun ?? false).finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #collect(ctx: Ctx, dryRun: boolean): Promise<GcResult> {
    const markStart = this.#now();
    const result: GcResult = {
      content: { count: 0, bytes: 0, removed: [] },
      ingests: { count: 0, bytes: 0, removed: [] },
      snapshots: { count: 0, bytes: 0, removed: [] },
      leases: dryRun ? 0 : this.#d.leases.deleteExpired(markStart),
    };
    const marked: Marks = { content: new Set<string>(), chainIds: new Set<string>(), snapshots: [] };
    let roots = this.#roots(markStart);
    await this.#markContent(ctx, roots.content, marked);
    // Roots added while we walked (a pull that just finished) are marked too.
    const again = this.#roots(this.#now());
    await this.#markContent(ctx, again.content.filter((n) => !marked.content.has(n.digest)), marked);
    roots = { ...again, ingests: new Set([...roots.ingests, ...again.ingests]), snapshots: [...roots.snapshots, ...again.snapshots] };

    await this.#sweepContent(ctx, marked.content, markStart, dryRun, result);
    await this.#sweepIngests(ctx, roots.ingests, dryRun, result);
    for (const sn of this.#d.snapshotters) {
      await this.#sweepSnapshots(ctx, sn, marked.chainIds, [...roots.snapshots, ...marked.snapshots], markStart, dryRun, result);
    }
    ctx.log.info('garbage collection done', {
      content: result.content.count,
      ingests: result.ingests.count,
      snapshots: result.snapshots.count,
      bytes: result.content.bytes + result.ingests.bytes + result.snapshots.bytes,
      leases: result.leases,
      dryRun,
    });
    return result;
  }

  #roots(now: Date): { content: Node[]; ingests: Set<string>; snapshots: { snapshotter?: string; key: string }[] } {
    const content: Node[] = [];
    for (const { target } of this.#d.images.allTargets()) {
      if (isDigest(target.digest)) content.push({ digest: target.digest, mediaType: target.mediaType });
    }
    const ingests = new Set<string>();
    const snapshots: { snapshotter?: string; key: string }[] = [];
    for (const r of this.#d.leases.activeResources(now) as LeaseResource[]) {
      if (r.kind === 'content' && isDigest(r.id)) content.push({ digest: r.id });
      else if (r.kind === 'ingest') ingests.add(r.id);
      else if (r.kind === 'snapshot') snapshots.push({ snapshotter: r.snapshotter, key: r.id });
    }
    for (const c of this.#d.containers.allSnapshotRefs()) snapshots.push({ snapshotter: c.snapshotter, key: c.snapshotKey });
    return { content, ingests, snapshots };
  }

  async #markContent(ctx: Ctx, roots: Node[], marked: Marks): Promise<void> {
    const queue = [...roots];
    for (let node = queue.shift(); node; node = queue.shift()) {
      ctx.signal.throwIfAborted();
      if (marked.content.has(node.digest)) continue;
      marked.content.add(node.digest);
      await this.#followLabels(ctx, node.digest, queue, marked);
      const doc = await this.#readJson(ctx, node);
      if (!doc) continue;
      const type = node.mediaType ?? sniff(doc);
      if (isIndexType(type)) {
        for (const m of arrayOf(doc.manifests)) if (isDescriptor(m)) queue.push({ digest: m.digest, mediaType: m.mediaType });
      } else if (isManifestType(type)) {
        if (isDescriptor(doc.config)) queue.push({ digest: doc.config.digest, mediaType: doc.config.mediaType });
        for (const l of arrayOf(doc.layers)) if (isDescriptor(l)) marked.content.add(l.digest);
      } else if (isConfigType(type)) {
        const rootfs = doc.rootfs as { diff_ids?: unknown } | undefined;
        const diffIds = arrayOf(rootfs?.diff_ids).filter((d): d is Digest => typeof d === 'string' && isDigest(d));
        for (const id of chainIds(diffIds)) marked.chainIds.add(id);
      }
    }
  }

  /**
   * containerd's GC labels on a blob name what it references
   * (`containerd.io/gc.ref.content.<x>` = digest,
   * `containerd.io/gc.ref.snapshot.<snapshotter>` = key); they are followed as
   * well, so content stays alive however its writer chose to link it.
   */
  async #followLabels(ctx: Ctx, digest: Digest, queue: Node[], marked: Marks): Promise<void> {
    let labels: Record<string, string>;
    try {
      labels = (await this.#d.content.info(ctx, digest)).labels;
    } catch (err) {
      if (kindOf(err) === 'NotFound') return;
      throw err;
    }
    for (const [k, v] of Object.entries(labels)) {
      if (k.startsWith(GC_REF_CONTENT) && isDigest(v)) queue.push({ digest: v });
      else if (k.startsWith(GC_REF_SNAPSHOT) && v) marked.snapshots.push({ snapshotter: k.slice(GC_REF_SNAPSHOT.length), key: v });
    }
  }

  /** The blob as JSON when it may be a manifest, index or config; undefined for leaves and missing blobs. */
  async #readJson(ctx: Ctx, node: Node): Promise<Record<string, unknown> | undefined> {
    if (node.mediaType !== undefined && !isIndexType(node.mediaType) && !isManifestType(node.mediaType) && !isConfigType(node.mediaType)) return undefined;
    try {
      if (node.mediaType === undefined && (await this.#d.content.info(ctx, node.digest)).size > GC_MAX_MANIFEST_BYTES) return undefined;
      const buf = await this.#d.content.readAll(ctx, node.digest, GC_MAX_MANIFEST_BYTES);
      const doc: unknown = JSON.parse(buf.toString('utf8'));
      return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined;
    } catch (err) {
      const kind = kindOf(err);
      if (kind === 'NotFound') return undefined;
      if (kind === 'Canceled') throw err;
      if (node.mediaType !== undefined) ctx.log.warn('gc: unreadable manifest treated as a leaf', { digest: node.digest, err });
      return undefined;
    }
  }

  async #sweepContent(ctx: Ctx, marked: Set<string>, markStart: Date, dryRun: boolean, result: GcResult): Promise<void> {
    const victims: { digest: Digest; size: number }[] = [];
    await this.#d.content.walk(ctx, (info) => {
      if (!marked.has(info.digest) && info.createdAt < markStart) victims.push({ digest: info.digest, size: info.size });
    });
    for (const v of victims) {
      if (!dryRun && !(await ignoreKinds(() => this.#d.content.delete(ctx, v.digest), ['NotFound']))) continue;
      result.content.count++;
      result.content.bytes += v.size;
      result.content.removed.push(v.digest);
    }
  }

  async #sweepIngests(ctx: Ctx, leased: Set<string>, dryRun: boolean, result: GcResult): Promise<void> {
    const cutoff = this.#now().getTime() - this.#graceMs;
    for (const st of await this.#d.content.listStatuses(ctx)) {
      if (leased.has(st.ref) || st.updatedAt.getTime() > cutoff) continue;
      if (!dryRun && !(await ignoreKinds(() => this.#d.content.abort(ctx, st.ref), ['NotFound', 'Unavailable']))) continue;
      result.ingests.count++;
      result.ingests.bytes += st.offset;
      result.ingests.removed.push(st.ref);
    }
  }

  async #sweepSnapshots(
    ctx: Ctx,
    sn: GcSnapshotter,
    chainIdSet: Set<string>,
    roots: { snapshotter?: string; key: string }[],
    markStart: Date,
    dryRun: boolean,
    result: GcResult,
  ): Promise<void> {
    const all = new Map<string, GcSnapshotInfo>();
    await sn.walk(ctx, (info) => {
      all.set(info.name, info);
    });
    const keep = new Set<string>();
    const mark = (key: string) => {
      for (let k: string | undefined = key; k !== undefined && !keep.has(k) && all.has(k); k = all.get(k)?.parent) keep.add(k);
    };
    for (const id of chainIdSet) mark(id);
    for (const r of roots) if (r.snapshotter === undefined || r.snapshotter === sn.name) mark(r.key);

    const cutoff = this.#now().getTime() - this.#graceMs;
    const depth = (info: GcSnapshotInfo): number => {
      let n = 0;
      for (let p = info.parent; p !== undefined && n <= all.size; p = all.get(p)?.parent) n++;
      return n;
    };
    const victims = [...all.values()]
      .filter((i) => !keep.has(i.name) && i.createdAt < markStart && (i.kind === 'committed' || i.updatedAt.getTime() <= cutoff))
      .map((i) => ({ info: i, depth: depth(i) }))
      .sort((a, b) => b.depth - a.depth);
    const removed = new Set<string>();
    for (const { info } of victims) {
      // A victim with a surviving child (one spared for its age) must stay too.
      const hasLiveChild = [...all.values()].some((c) => c.parent === info.name && !removed.has(c.name));
      if (hasLiveChild) continue;
      let bytes = 0;
      try {
        bytes = (await sn.usage(ctx, info.name)).size;
      } catch {
        // Usage is informational; a snapshotter that cannot tell still gets its snapshot removed.
      }
      if (!dryRun && !(await ignoreKinds(() => sn.remove(ctx, info.name), ['NotFound', 'Conflict']))) continue;
      removed.add(info.name);
      result.snapshots.count++;
      result.snapshots.bytes += bytes;
      result.snapshots.removed.push({ snapshotter: sn.name, key: info.name });
    }
  }
}

/** Run `fn`; true if it succeeded, false if it failed with one of `kinds`, otherwise rethrow. */
async function ignoreKinds(fn: () => Promise<void>, kinds: string[]): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (kinds.includes(kindOf(err))) return false;
    throw err;
  }
}

function arrayOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function isDescriptor(v: unknown): v is { digest: Digest; mediaType?: string } {
  const d = v as { digest?: unknown } | null;
  return typeof d === 'object' && d !== null && typeof d.digest === 'string' && isDigest(d.digest);
}

/** The media type of a JSON document reached without one (a lease root). */
function sniff(doc: Record<string, unknown>): string {
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MediaTypes.ociIndex;
  if (Array.isArray(doc.layers) && doc.config) return MediaTypes.ociManifest;
  if (doc.rootfs) return MediaTypes.ociConfig;
  return '';
}
