import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { hexOf, isDigest } from '../core/digest.ts';
import { berthError, isNotFound } from '../core/errors.ts';
import { releaseMemorySoon } from '../core/memory.ts';
import type { ImageHistoryItem, ImageInspect, ImageSummary, ImportOptions, ProgressEvent, PruneResult, RemoveResult } from '../core/images.ts';
import { hostPlatform, loadImage } from './blobs.ts';
import { familiarName, isDanglingName, looksLikeIdPrefix, normalizeName, parseName } from './names.ts';
import type { FoundImage, ImageRecord, ImagesConfig, ImageServiceCore, ImageServiceDeps, Platform, ResolvedImage } from './types.ts';
import { GcLabels } from './types.ts';
import { toHistory, toInspect, toSummary } from './views.ts';
import { pullImage } from './pull.ts';
import { pushImage } from './push.ts';
import { removeImages, pruneImages } from './remove.ts';
import { saveImages } from './archive-save.ts';
import { loadArchive } from './archive-load.ts';
import { importRootfs } from './import.ts';
import { commitLayer, type CommitLayerOptions } from './commit.ts';

export type { FoundImage, ImagesConfig, ImageServiceDeps };

/**
 * The image service: pull, push, tag, remove, list, inspect, history,
 * prune, save, load, import, login/logout. Front doors translate requests
 * into these calls; nothing here knows of HTTP or the CLI.
 *
 * Images are found (`find`) by name (`busybox`, `busybox:1`,
 * `host:5000/a/b:tag`), name@digest, full image ID (`sha256:…`), manifest
 * digest, or an ID prefix of at least 3 hex characters. NotFound names the
 * input; an ambiguous prefix is InvalidArgument.
 *
 * Example:
 *   await images.pull(ctx, 'busybox', (ev) => console.log(ev.status));
 *   const [row] = await images.list(ctx);
 */
export class ImageService implements ImageServiceCore {
  readonly deps: ImageServiceDeps;
  readonly platform: Platform;
  /** Content is immutable, so a target digest always resolves to the same image. */
  readonly #resolved = new Map<string, ResolvedImage>();
  /** Per-layer work in progress, shared by concurrent pulls of the same layers. */
  readonly inflight = new Map<string, Promise<unknown>>();
  /** Images an operation uses without a container (a build's), by namespace and ID, with how many holds each has. */
  readonly #held = new Map<string, number>();

  constructor(deps: ImageServiceDeps) {
    this.deps = deps;
    this.platform = deps.platform ?? hostPlatform();
  }

  async resolveRecord(ctx: Ctx, rec: ImageRecord): Promise<ResolvedImage> {
    const cached = this.#resolved.get(rec.target.digest);
    if (cached) return cached;
    const r = await loadImage(ctx, this.deps.content, rec.target, this.platform);
    this.#resolved.set(rec.target.digest, r);
    return r;
  }

  /** Every record with its resolved image; records whose content is gone are skipped. */
  async all(ctx: Ctx): Promise<{ rec: ImageRecord; img: ResolvedImage }[]> {
    const out: { rec: ImageRecord; img: ResolvedImage }[] = [];
    for (const rec of await this.deps.records.list(ctx)) {
      try {
        out.push({ rec, img: await this.resolveRecord(ctx, rec) });
      } catch (err) {
        ctx.log.warn('image record points at missing content', { image: rec.name, err });
      }
    }
    return out;
  }

  async find(ctx: Ctx, input: string): Promise<FoundImage> {
    const all = await this.all(ctx);
    const group = (id: Digest): FoundImage => {
      const recs = all.filter((x) => x.img.id === id);
      return { ...recs[0].img, records: recs.map((x) => x.rec) };
    };
    const byId = (pred: (x: { rec: ImageRecord; img: ResolvedImage }) => boolean) => all.find(pred);
    if (isDigest(input)) {
      const hit = byId((x) => x.img.id === input || x.rec.target.digest === input || x.img.manifestDesc.digest === input);
      if (hit) return group(hit.img.id);
      throw berthError('NotFound', `No such image: ${input}`);
    }
    let normalized: string | undefined;
    try {
      normalized = normalizeName(input);
    } catch (err) {
      if (!looksLikeIdPrefix(input)) throw err;
    }
    if (normalized) {
      const exact = byId((x) => x.rec.name === normalized);
      if (exact) return group(exact.img.id);
      const p = parseName(input);
      if (p.digest) {
        const hit = byId((x) => parseName(x.rec.name).repository === p.repository && (x.rec.target.digest === p.digest || x.img.manifestDesc.digest === p.digest));
        if (hit) return group(hit.img.id);
      }
    }
    if (looksLikeIdPrefix(input)) {
      const prefix = input.replace(/^sha256:/, '');
      const ids = [...new Set(all.filter((x) => hexOf(x.img.id).startsWith(prefix)).map((x) => x.img.id))];
      if (ids.length === 1) return group(ids[0]);
      if (ids.length > 1) throw berthError('InvalidArgument', `image ID prefix "${input}" is ambiguous: it matches ${ids.length} images`);
    }
    throw berthError('NotFound', `No such image: ${input}`);
  }

  async list(ctx: Ctx, opts: { all?: boolean; filters?: Record<string, string[]> } = {}): Promise<ImageSummary[]> {
    const all = await this.all(ctx);
    const inUse = await this.#usage(ctx);
    const ids = [...new Set(all.map((x) => x.img.id))];
    let rows = ids.map((id) => {
      const recs = all.filter((x) => x.img.id === id);
      return toSummary(recs[0].img, recs.map((x) => x.rec), inUse.filter((u) => u === id).length);
    });
    const f = opts.filters ?? {};
    // Checked before any image is, as dockerd does: a bad filter fails on an empty store too.
    for (const key of Object.keys(f)) if (!IMAGE_FILTERS.includes(key)) throw berthError('InvalidArgument', `invalid filter '${key}'`);
    // before/since name an image: those created before (after) it.
    for (const [key, keep] of [['before', (a: number, b: number) => a < b], ['since', (a: number, b: number) => a > b]] as const) {
      for (const ref of f[key] ?? []) {
        const created = Date.parse((await this.find(ctx, ref)).config.created ?? '') / 1000 || 0;
        rows = rows.filter((r) => keep(r.Created, created));
      }
    }
    for (const t of f.until ?? []) {
      const until = untilSeconds(t);
      rows = rows.filter((r) => r.Created < until);
    }
    if (f.dangling?.length) {
      const want = f.dangling[0] === 'true' || f.dangling[0] === '1';
      rows = rows.filter((r) => (r.RepoTags.length === 0) === want);
    }
    if (f.reference?.length) {
      const pats = f.reference.map(globToRegExp);
      // As docker: only the matching names of an image are listed.
      const match = (t: string) => pats.some((p) => p.test(t) || p.test(t.slice(0, t.lastIndexOf(':'))));
      rows = rows.map((r) => ({ ...r, RepoTags: r.RepoTags.filter(match) })).filter((r) => r.RepoTags.length > 0);
    }
    for (const label of f.label ?? []) {
      const [k, v] = label.split('=');
      rows = rows.filter((r) => k in r.Labels && (v === undefined || r.Labels[k] === v));
    }
    return rows.sort((a, b) => b.Created - a.Created);
  }

  async inspect(ctx: Ctx, name: string): Promise<ImageInspect> {
    const img = await this.find(ctx, name);
    return toInspect(img, img.records, this.deps.snapshotter.name);
  }

  async history(ctx: Ctx, name: string): Promise<ImageHistoryItem[]> {
    const img = await this.find(ctx, name);
    return toHistory(img, img.records);
  }

  /** Point `target` (a normalized name) at the image `source` names. */
  async tag(ctx: Ctx, source: string, target: string): Promise<void> {
    const img = await this.find(ctx, source);
    const p = parseName(target);
    if (p.digest) throw berthError('InvalidArgument', `refusing to create a tag with a digest reference: "${target}"`);
    await this.setName(ctx, `${p.repository}:${p.tag ?? 'latest'}`, img.target, img.id);
  }

  /**
   * Create or move the record `name`. When the name moves away from an image
   * that no other name holds, that image stays as a dangling record, as
   * docker leaves `<none>:<none>` behind.
   */
  async setName(ctx: Ctx, name: string, target: ResolvedImage['target'], id: Digest, labels: Record<string, string> = {}): Promise<void> {
    const { records } = this.deps;
    const prev = await records.get(ctx, name).catch((err) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    await records.put(ctx, { name, target, labels: { ...labels, [GcLabels.lastTagTime]: new Date().toISOString() } });
    const danglingName = id;
    if (!isDanglingName(name)) await records.delete(ctx, danglingName).catch(() => {});
    if (prev && prev.target.digest !== target.digest) {
      const prevImg = await this.resolveRecord(ctx, prev).catch(() => undefined);
      if (!prevImg) return;
      const others = (await this.all(ctx)).filter((x) => x.img.id === prevImg.id);
      const repoDigest = `${parseName(name).repository}@${prev.target.digest}`;
      if (others.length === 0) await records.put(ctx, { name: prevImg.id, target: prev.target, labels: { [GcLabels.repoDigest]: repoDigest } });
    }
  }

  // Pulls, loads, imports and commits end by handing their memory back (see releaseMemorySoon).
  pull(ctx: Ctx, ref: string, onProgress: (ev: ProgressEvent) => void = () => {}, opts: { platform?: Platform } = {}): Promise<string> {
    return pullImage(this, ctx, ref, onProgress, opts).finally(releaseMemorySoon);
  }

  push(ctx: Ctx, ref: string, onProgress: (ev: ProgressEvent) => void = () => {}): Promise<string> {
    return pushImage(this, ctx, ref, onProgress);
  }

  remove(ctx: Ctx, names: string, opts: { force?: boolean } = {}): Promise<RemoveResult[]> {
    return removeImages(this, ctx, names, opts);
  }

  prune(ctx: Ctx, opts: { all?: boolean } = {}): Promise<PruneResult> {
    return pruneImages(this, ctx, opts);
  }

  save(ctx: Ctx, names: string[], format: 'docker' | 'oci'): Promise<Readable> {
    return saveImages(this, ctx, names, format);
  }

  load(ctx: Ctx, stream: Readable, onProgress: (ev: ProgressEvent) => void = () => {}): Promise<string[]> {
    return loadArchive(this, ctx, stream, onProgress).finally(releaseMemorySoon);
  }

  /** A new image: `opts.parent`'s layers plus one (a container's changes, for `commit`). */
  commitLayer(ctx: Ctx, opts: CommitLayerOptions): Promise<string> {
    return commitLayer(this, ctx, opts).finally(releaseMemorySoon);
  }

  import(ctx: Ctx, stream: Readable, opts: ImportOptions = {}): Promise<string> {
    return importRootfs(this, ctx, stream, opts).finally(releaseMemorySoon);
  }

  /** Check credentials against a registry without storing them (the Docker API's /auth: its client keeps them). */
  async checkLogin(ctx: Ctx, host: string, username: string, password: string): Promise<void> {
    if (!username || !password) throw berthError('InvalidArgument', 'login: username and password are required');
    await this.deps.registry.login(ctx, host, username, password);
  }

  async login(ctx: Ctx, host: string, username: string, password: string): Promise<void> {
    if (!username || !password) throw berthError('InvalidArgument', 'login: username and password are required');
    await this.deps.registry.login(ctx, host, username, password);
    await this.deps.credentials.store(host, username, password);
  }

  async logout(_ctx: Ctx, host: string): Promise<boolean> {
    return this.deps.credentials.erase(host);
  }

  /** Image IDs (and names) that containers use, one entry per container. */
  async #usage(ctx: Ctx): Promise<string[]> {
    if (!this.deps.containers) return [];
    return (await this.deps.containers.imagesInUse(ctx)).map((u) => u.imageId);
  }

  async usage(ctx: Ctx): Promise<{ imageId: string; image: string; containerId: string }[]> {
    return this.deps.containers ? this.deps.containers.imagesInUse(ctx) : [];
  }

  /**
   * Keeps image `id` from `prune` while an operation uses it without a
   * container: a build's intermediate images between its steps, its base
   * images. Held in memory (an operation does not outlive berthd); the
   * returned function lets it go, once.
   */
  hold(ctx: Ctx, id: string): () => void {
    const key = `${ctx.namespace}\0${id}`;
    this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#held.get(key) ?? 1) - 1;
      if (left > 0) this.#held.set(key, left);
      else this.#held.delete(key);
    };
  }

  isHeld(ctx: Ctx, id: string): boolean {
    return this.#held.has(`${ctx.namespace}\0${id}`);
  }

  /**
   * Run a function under a fresh lease, deleted afterwards whatever happens.
   * When it fails, GC runs at once: what the operation stored (blobs of a
   * refused image, a decompression bomb's blob) is garbage the moment the
   * lease goes, and should not wait for the next prune. Partial downloads
   * stay for a resume: GC spares ingests touched within its grace period.
   */
  async withLease<T>(ctx: Ctx, fn: (leased: Ctx) => Promise<T>): Promise<T> {
    const lease = await this.deps.leases.create(ctx, { ttlMs: this.deps.config.leaseTtlMs });
    let ok = false;
    try {
      const r = await fn({ ...ctx, lease });
      ok = true;
      return r;
    } finally {
      // What the operation marked in the write-behind is all visible now: its layers' sync starts behind the answer.
      this.deps.writeBehind.settle(lease);
      const cctx = { ...ctx, signal: AbortSignal.timeout(30_000) };
      await this.deps.leases.delete(cctx, lease).catch((err) => ctx.log.warn('cannot delete lease', { lease, err }));
      if (!ok) await this.deps.gc.collect(cctx).catch((err) => ctx.log.warn('cannot collect what a failed operation left', { err }));
    }
  }
}

export { familiarName };

const IMAGE_FILTERS = ['dangling', 'reference', 'label', 'before', 'since', 'until'];

/** docker's `until`: a Unix time (seconds, with a fraction), an RFC 3339 time or a duration before now ("10m", "2h30m"). */
function untilSeconds(t: string): number {
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const d = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (d && t) return Date.now() / 1000 - (Number(d[1] ?? 0) * 3600 + Number(d[2] ?? 0) * 60 + Number(d[3] ?? 0));
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw berthError('InvalidArgument', `invalid filter 'until=${t}': expected a timestamp or a duration`);
  return ms / 1000;
}

function globToRegExp(p: string): RegExp {
  const esc = p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}
