import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { chainId } from '../core/chain-id.ts';
import type { ContainerConfig } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import { berthError, isAlreadyExists, isNotFound, kindOf, wrap } from '../core/errors.ts';
import type { ImageConfigFields } from '../core/images.ts';
import type { ImageConfig } from '../images/types.ts';
import { applyConfigStep, DEFAULT_SHELL, envLookup, expandWord, type StepScope } from './config-steps.ts';
import { openContextDir, receiveContext } from './context.ts';
import { FileHashCache } from './hash-cache.ts';
import { flagValue, parseDockerfile, parseError, type Instruction, type Stage } from './dockerfile.ts';
import { copyStep } from './copy-step.ts';
import { makeWorkdir } from './copy.ts';
import { resolveUserInRootfs } from '../runtime/oci/rootfs-files.ts';
import { runStep } from './run-step.ts';
import { normalizeName } from '../images/names.ts';
import { hashKey, noteArgs, timestamp, type BuildRun, type StageState, type StepHost } from './state.ts';
import type { BuildEvent, BuildImage, BuilderDeps, BuildInput, BuildResult } from './types.ts';

export type { BuilderDeps, BuildEvent, BuildInput, BuildResult };

/** One build cache record, as docker's `GET /system/df` lists it. */
export interface BuildCacheRecord {
  ID: string;
  Parents: string[];
  Type: 'regular' | 'exec.cachemount';
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string | null;
  UsageCount: number;
}
export type { BuildRequest } from './types.ts';

/** Args every build knows without an ARG line outside a stage, and that are never written to the image. */
const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

const CACHE_LEASE_LABEL = 'berth.build-cache';

/** Files of in-place contexts whose hashes are kept: a few MiB at most, several large contexts' worth. */
const DEFAULT_HASH_CACHE_ENTRIES = 50_000;


/**
 * The builder: a Dockerfile and its context in, an image out, on the engine
 * berth already has. RUN runs in a container of the container service
 * (the step's image, its ENV, WORKDIR, USER and args, the default network
 * or none) and the container's changes become the step's layer through
 * `commit`; COPY and ADD write into a created (never started) container's
 * mounted rootfs and are committed the same way; every other instruction
 * changes only the config, kept in memory until a layer or the end needs
 * it stored. Stages run as soon as the target needs them, those that do
 * not depend on each other at once. Each step's image is cached under a key
 * made of its parent's key, its instruction as expanded, the args it uses
 * and the digest of what it copies; the cache (metadata's build_cache) keeps
 * its images from GC with one lease per entry and survives restarts.
 *
 * Errors: a malformed Dockerfile, an unknown stage or instruction is
 * InvalidArgument with file:line:column; a missing context file NotFound; a
 * failing RUN Unknown with its exit code (`exitCode`) and the step; a
 * context over the bound ResourceExhausted. A failed build leaves no
 * container, mount or record; only the steps it completed stay cached.
 *
 * Example:
 *   const { id } = await builder.build(ctx, { request: { tags: ['app'] }, context: tarStream, onEvent: print });
 */
export class Builder {
  readonly #d: BuilderDeps;
  readonly #host: StepHost;

  constructor(deps: BuilderDeps) {
    this.#d = deps;
    this.#host = {
      deps,
      hashes: new FileHashCache(deps.config.hashCacheEntries ?? DEFAULT_HASH_CACHE_ENTRIES),
      scope: (run, st, used) => this.#scope(run, st, used),
      imageFor: async (run, stage, name, step) => {
        const ref = this.#stageRef(run, name, stage.index);
        return ref ? this.#materialize(run, await this.#stage(run, ref)) : this.#baseImage(run, name, step);
      },
      openImage: (run, id) => this.#openImage(run, id),
      inContainer: (run, st, step, config, createdBy, work) => this.#inContainer(run, st, step, config, createdBy, work),
      cached: (run, st, step, createdBy) => this.#cached(run, st, step, createdBy),
      parentId: (run, st) => this.#parentId(run, st),
    };
  }

  async build(ctx: Ctx, input: BuildInput): Promise<BuildResult> {
    const req = input.request;
    const id = randomBytes(8).toString('hex');
    const dir = path.join(this.#d.config.workDir, id);
    const abort = new AbortController();
    const bctx: Ctx = { ...ctx, signal: AbortSignal.any([ctx.signal, abort.signal]) };
    const emit = input.onEvent ?? (() => {});
    const made = new Set<string>();
    const holds = new Map<string, () => void>();
    let stageRuns: Map<number, Promise<StageState>> | undefined;
    let firstError: unknown;
    try {
      // A bad name fails before any work, as docker's does.
      for (const t of req.tags ?? []) {
        try {
          normalizeName(t);
        } catch (err) {
          throw berthError('InvalidArgument', `invalid tag "${t}": ${(err as Error).message}`, err);
        }
      }
      // The build's own directory (downloads, a context sent as a tar, private copies for bind mounts).
      await mkdir(dir, { recursive: true, mode: 0o700 });
      if (req.network && !['default', 'bridge', 'none'].includes(req.network)) throw berthError('InvalidArgument', `network mode "${req.network}" is not supported for builds: want default or none`);
      if (req.platform && !this.#platformMatches(req.platform)) throw berthError('InvalidArgument', `platform "${req.platform}" is not supported: berth builds for ${this.#platformString()} only`);
      const t0 = performance.now();
      const context =
        input.context instanceof Readable
          ? await receiveContext(bctx, path.join(dir, 'context'), input.context, { maxBytes: this.#d.config.maxContextBytes, dockerfile: req.dockerfile ?? 'Dockerfile' })
          : await openContextDir(bctx, input.context.dir, { dockerfile: req.dockerfile ?? 'Dockerfile' });
      ctx.log.debug('build context received', { build: id, inPlace: context.inPlace, ms: Math.round(performance.now() - t0) });
      const df = parseDockerfile(context.dockerfile, context.dockerfileName);
      const run: BuildRun = {
        ctx: bctx,
        id,
        dir,
        context,
        df,
        input,
        emit,
        step: 0,
        total: 0,
        predefined: this.#predefinedArgs(),
        meta: new Map(),
        stageRuns: (stageRuns = new Map()),
        made,
        holds,
        usedArgs: new Set(),
        needed: [],
        epoch: sourceDateEpoch(req.buildArgs),
        cacheFrom: [],
      };
      for (const ref of req.noCache ? [] : (req.cacheFrom ?? [])) {
        // As docker: a --cache-from image that is not here is passed over.
        const img = await this.#find(run, ref).catch((err) => {
          if (!isNotFound(err)) throw err;
          emit({ kind: 'warning', message: `--cache-from ${ref}: no such image here, not used` });
        });
        if (img) run.cacheFrom.push(img);
      }
      this.#evalMetaArgs(run);
      const target = this.#targetStage(run);
      run.needed = this.#neededStages(run, target);
      run.total = run.needed.reduce((n, s) => n + 1 + s.instructions.length, 0);
      // Every needed stage starts now; a stage waits for another only where it uses it.
      const all = run.needed.map((s) => this.#stage(run, s));
      all.forEach((p) =>
        p.catch((err: unknown) => {
          // The first failure is the build's: the stages it aborts fail with Canceled after it.
          firstError ??= err;
          abort.abort();
        }),
      );
      const final = await this.#stage(run, target);
      await Promise.all(all);
      if (req.labels && Object.keys(req.labels).length) {
        final.config = structuredClone(final.config);
        final.config.config = { ...final.config.config, Labels: { ...final.config.config?.Labels, ...req.labels } };
        final.dirty = true;
        final.key = hashKey(final.key, 'labels', JSON.stringify(Object.entries(req.labels).sort()));
      }
      const image = await this.#materialize(run, final);
      const unused = Object.keys(req.buildArgs ?? {}).filter((k) => !run.usedArgs.has(k) && !PROXY_ARGS.includes(k) && !run.predefined.has(k) && k !== 'SOURCE_DATE_EPOCH');
      if (unused.length) emit({ kind: 'warning', message: `One or more build-args [${unused.join(' ')}] were not consumed` });
      const tags: string[] = [];
      for (const t of req.tags ?? []) {
        await this.#d.images.tag(bctx, image.id, t);
        tags.push(t);
      }
      made.delete(image.id);
      emit({ kind: 'result', id: image.id, tags });
      return { id: image.id, tags };
    } catch (err) {
      abort.abort();
      // Stages still running stop at the abort; their containers go before the build answers.
      if (stageRuns) await Promise.allSettled([...stageRuns.values()]);
      throw firstError ?? err;
    } finally {
      const cctx = cleanupCtx(ctx, 60_000);
      for (const m of made) await this.#d.images.dropRecord(cctx, m).catch(() => {});
      for (const release of holds.values()) release();
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** `builder prune`: every cache entry and its lease, then GC; resolves to what went and the bytes freed. */
  async prune(ctx: Ctx): Promise<{ entries: number; bytes: number }> {
    const entries = await this.#d.cache.list(ctx);
    for (const e of entries) {
      await this.#d.cache.delete(ctx, e.key);
      await this.#d.leases.delete(ctx, e.leaseId).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
    const mountsDir = path.join(this.#d.config.cacheMountDir, ctx.namespace);
    const mountDirs = await readdir(mountsDir).catch(() => [] as string[]);
    let mountBytes = 0;
    for (const d of mountDirs) mountBytes += await treeBytes(path.join(mountsDir, d));
    await rm(mountsDir, { recursive: true, force: true });
    const { bytes } = await this.#d.images.gc(ctx);
    return { entries: entries.length + mountDirs.length, bytes: bytes + mountBytes };
  }

  /**
   * The build cache as docker's `system df` lists it: one `regular` record
   * per cached step (its layer's compressed size) and one `exec.cachemount`
   * per RUN --mount=type=cache directory; none is in use between builds.
   */
  async cacheUsage(ctx: Ctx): Promise<BuildCacheRecord[]> {
    const out: BuildCacheRecord[] = (await this.#d.cache.list(ctx)).map((e) => ({
      ID: e.key.replace(/^sha256:/, '').slice(0, 25),
      Parents: [],
      Type: 'regular',
      Description: `image ${e.imageId}`,
      InUse: false,
      Shared: false,
      Size: e.size,
      CreatedAt: e.createdAt,
      LastUsedAt: e.lastUsedAt,
      UsageCount: 0,
    }));
    const mountsDir = path.join(this.#d.config.cacheMountDir, ctx.namespace);
    for (const d of await readdir(mountsDir).catch(() => [] as string[])) {
      const st = await lstat(path.join(mountsDir, d)).catch(() => undefined);
      if (!st) continue;
      const when = st.mtime.toISOString();
      out.push({ ID: d.slice(0, 25), Parents: [], Type: 'exec.cachemount', Description: 'cached mount (RUN --mount=type=cache)', InUse: false, Shared: false, Size: await treeBytes(path.join(mountsDir, d)), CreatedAt: st.birthtime.toISOString(), LastUsedAt: when, UsageCount: 0 });
    }
    return out;
  }

  // ------------------------------------------------------------------ args and stages

  #platformString(): string {
    const p = this.#d.images.platform;
    return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  }

  #platformMatches(s: string): boolean {
    const p = this.#d.images.platform;
    const [os, arch, variant] = s.split('/');
    return os === p.os && (arch === undefined || arch === p.architecture) && (variant === undefined || variant === (p.variant ?? ''));
  }

  #predefinedArgs(): Map<string, string> {
    const p = this.#d.images.platform;
    const plat = this.#platformString();
    const m = new Map<string, string>();
    for (const side of ['BUILD', 'TARGET']) {
      m.set(`${side}PLATFORM`, plat);
      m.set(`${side}OS`, p.os);
      m.set(`${side}ARCH`, p.architecture);
      m.set(`${side}VARIANT`, p.variant ?? '');
    }
    return m;
  }

  #evalMetaArgs(run: BuildRun): void {
    const given = run.input.request.buildArgs ?? {};
    for (const ins of run.df.metaArgs) {
      for (const a of ins.args) {
        const scope = this.#scope(run, undefined, new Set());
        const value = a.key in given ? given[a.key] : a.value !== undefined ? expandWord(ins, a.value, scope) : undefined;
        run.meta.set(a.key, value);
        if (a.key in given) run.usedArgs.add(a.key);
      }
    }
  }

  /** Expansion scope: the stage's ENV, then its ARGs; outside a stage, the meta args and the platform args. */
  #scope(run: BuildRun, st: StageState | undefined, used: Set<string>): StepScope {
    const env = st ? envLookup(st.config.config?.Env) : new Map<string, string>();
    const lookup = (name: string): string | undefined => {
      if (env.has(name)) return env.get(name);
      if (st) return st.args.get(name);
      if (run.meta.has(name)) return run.meta.get(name);
      return run.predefined.get(name);
    };
    return { escape: run.df.directives.escape, lookup, used, shell: st?.shell ?? DEFAULT_SHELL, cmdSet: st?.cmdSet };
  }

  #targetStage(run: BuildRun): Stage {
    const t = run.input.request.target;
    if (!t) return run.df.stages[run.df.stages.length - 1];
    const s = run.df.stages.find((x) => x.name === t.toLowerCase());
    if (!s) throw berthError('InvalidArgument', `failed to reach build target ${t} in Dockerfile: no stage is named "${t}" (stages: ${run.df.stages.map((x) => x.name ?? String(x.index)).join(', ')})`);
    return s;
  }

  /** The stage a `FROM` or `--from` names, if it names an earlier one (by name or index). */
  #stageRef(run: BuildRun, name: string, before: number): Stage | undefined {
    const lower = name.toLowerCase();
    const byName = run.df.stages.find((s) => s.name === lower && s.index < before);
    if (byName) return byName;
    if (/^\d+$/.test(name)) {
      const i = Number(name);
      if (i >= before) throw berthError('InvalidArgument', `stage index ${i} is not an earlier stage (this is stage ${before})`);
      return run.df.stages[i];
    }
    return undefined;
  }

  #fromImage(run: BuildRun, stage: Stage): string {
    return expandWord(stage.from, stage.from.image, this.#scope(run, undefined, run.usedArgs));
  }

  #neededStages(run: BuildRun, target: Stage): Stage[] {
    const need = new Set<number>();
    const visit = (s: Stage) => {
      if (need.has(s.index)) return;
      need.add(s.index);
      const base = this.#stageRef(run, this.#fromImage(run, s), s.index);
      if (base) visit(base);
      for (const ins of s.instructions) {
        const froms = ins.kind === 'COPY' ? [flagValue(ins, 'from')] : ins.kind === 'RUN' ? ins.flags.filter((f) => f.name === 'mount').map((f) => /(?:^|,)from=([^,]+)/.exec(f.value ?? '')?.[1]) : [];
        for (const from of froms) {
          if (from === undefined) continue;
          const ref = this.#stageRef(run, expandWord(ins, from, this.#scope(run, undefined, new Set())), s.index);
          if (ref) visit(ref);
        }
      }
    };
    visit(target);
    return run.df.stages.filter((s) => need.has(s.index));
  }

  #stage(run: BuildRun, stage: Stage): Promise<StageState> {
    let p = run.stageRuns.get(stage.index);
    if (!p) {
      p = this.#runStage(run, stage);
      run.stageRuns.set(stage.index, p);
    }
    return p;
  }

  async #runStage(run: BuildRun, stage: Stage): Promise<StageState> {
    const label = stage.name ?? `stage-${stage.index}`;
    const count = 1 + stage.instructions.length;
    let index = 0;
    const begin = (ins: Instruction) => {
      const step = ++run.step;
      index++;
      run.emit({ kind: 'step', step, total: run.total, stage: label, index, count, text: ins.original });
      return { step, t0: performance.now() };
    };
    const done = (s: { step: number; t0: number }, id?: string) => run.emit({ kind: 'done', step: s.step, ms: Math.round(performance.now() - s.t0), ...(id ? { id } : {}) });
    const from = begin(stage.from);
    const st = await this.#from(run, stage, from.step);
    done(from, st.image?.id);
    // The base image's ONBUILD triggers run first, as Docker runs them, and are not inherited.
    const triggers = st.config.config?.OnBuild ?? [];
    if (triggers.length) {
      st.config.config = { ...st.config.config, OnBuild: null };
      st.dirty = true;
      for (const t of triggers) {
        const parsed = parseDockerfile(`FROM scratch\n${t}\n`, `ONBUILD of ${stage.from.image}`).stages[0].instructions[0];
        await this.#instruction(run, stage, st, parsed, from.step);
      }
    }
    for (const ins of stage.instructions) {
      run.ctx.signal.throwIfAborted();
      const s = begin(ins);
      const id = await this.#instruction(run, stage, st, ins, s.step);
      done(s, id);
    }
    return st;
  }

  async #from(run: BuildRun, stage: Stage, step: number): Promise<StageState> {
    const ins = stage.from;
    const name = this.#fromImage(run, stage);
    if (ins.platform) {
      const plat = expandWord(ins, ins.platform, this.#scope(run, undefined, run.usedArgs));
      if (!this.#platformMatches(plat)) throw parseError(ins.pos, `FROM --platform=${plat}: berth builds for ${this.#platformString()} only`);
    }
    const fresh = (config: ImageConfig, image: BuildImage | undefined, key: string): StageState => ({ image, config: structuredClone(config), dirty: false, key: hashKey(key, `epoch:${run.epoch ?? ''}`), args: new Map(), shell: DEFAULT_SHELL, cmdSet: false });
    const ref = this.#stageRef(run, name, stage.index);
    if (ref) {
      const base = await this.#stage(run, ref);
      const image = await this.#materialize(run, base);
      return fresh(image.config, image, hashKey('image', image.id));
    }
    if (name.toLowerCase() === 'scratch') {
      const p = this.#d.images.platform;
      const config: ImageConfig = { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}), config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
      return fresh(config, undefined, hashKey('scratch'));
    }
    if (!name) throw parseError(ins.pos, 'FROM: the image name is empty (an unset ARG?)');
    const image = await this.#baseImage(run, name, step);
    return fresh(image.config, image, hashKey('image', image.id));
  }

  async #baseImage(run: BuildRun, name: string, step: number): Promise<BuildImage> {
    const { images } = this.#d;
    if (!run.input.request.pull) {
      try {
        return await this.#find(run, name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    try {
      await images.pull(run.ctx, name, (progress) => run.emit({ kind: 'pull', step, progress }));
    } catch (err) {
      throw wrap(err, `image "${name}" (not a stage of this Dockerfile, nor in the store)`);
    }
    return this.#find(run, name);
  }

  /**
   * An image the build uses: held from a concurrent prune until the build
   * ends (an image ID is held before it is looked up, so the record a step
   * has just made is not pruned in between).
   */
  async #find(run: BuildRun, ref: string): Promise<BuildImage> {
    if (/^sha256:[0-9a-f]{64}$/.test(ref)) this.#hold(run, ref);
    const img = await this.#d.images.find(run.ctx, ref);
    this.#hold(run, img.id);
    return img;
  }

  #hold(run: BuildRun, id: string): void {
    if (!run.holds.has(id)) run.holds.set(id, this.#d.images.hold(run.ctx, id));
  }

  // ------------------------------------------------------------------ instructions

  /** Run one instruction on the stage; resolves to the image made, when one was. */
  async #instruction(run: BuildRun, stage: Stage, st: StageState, ins: Instruction, step: number): Promise<string | undefined> {
    switch (ins.kind) {
      case 'RUN':
        return runStep(this.#host, run, stage, st, ins, step);
      case 'COPY':
      case 'ADD':
        return copyStep(this.#host, run, stage, st, ins, step);
      case 'ARG': {
        const given = run.input.request.buildArgs ?? {};
        const parts: string[] = [];
        for (const a of ins.args) {
          const scope = this.#scope(run, st, new Set());
          let value: string | undefined;
          if (a.key in given) {
            value = given[a.key];
            run.usedArgs.add(a.key);
          } else if (a.value !== undefined) value = expandWord(ins, a.value, scope);
          else if (run.meta.has(a.key)) value = run.meta.get(a.key);
          else if (run.predefined.has(a.key)) value = run.predefined.get(a.key);
          st.args.set(a.key, value);
          parts.push(a.value !== undefined ? `${a.key}=${a.value}` : a.key);
        }
        // As Docker: a new value misses the cache where the arg is first used, not at its declaration.
        st.key = hashKey(st.key, 'arg', ins.original);
        return undefined;
      }
      case 'FROM':
        throw parseError(ins.pos, 'FROM inside a stage');
      case 'ONBUILD':
      default: {
        const scope = this.#scope(run, st, new Set());
        const r = applyConfigStep(ins, st.config.config ?? {}, scope);
        noteArgs(run, st, scope.used);
        if (ins.kind === 'CMD') st.cmdSet = true;
        if (r.shell) st.shell = r.shell;
        if (ins.kind === 'WORKDIR' && r.config.WorkingDir && r.config.WorkingDir !== '/') return this.#workdir(run, st, step, r.config, r.createdBy);
        const now = timestamp(run);
        st.config = { ...st.config, config: r.config, ...(r.author ? { author: r.author } : {}), history: [...(st.config.history ?? []), { created: now, created_by: r.createdBy, empty_layer: true }] };
        st.dirty = true;
        st.key = hashKey(st.key, 'config', r.createdBy);
        return undefined;
      }
    }
  }













  /**
   * WORKDIR: the directory is made when the image lacks it (0755, owned by
   * the USER at that point), in a layer of its own as BuildKit makes it;
   * when it is there already the step changes only the config.
   */
  async #workdir(run: BuildRun, st: StageState, step: number, config: ImageConfigFields, createdBy: string): Promise<string | undefined> {
    const dir = config.WorkingDir!;
    st.config = { ...st.config, config };
    st.dirty = true;
    st.key = hashKey(st.key, 'workdir', createdBy);
    if (await this.#cached(run, st, step)) return st.image!.id;
    const made = await this.#inContainer(run, st, step, { image: await this.#parentId(run, st), labels: { 'berth.build': run.id }, network: { mode: 'none' } }, createdBy, async (id) => {
      const { rootfs, release } = await this.#d.containers.rootfsOf(run.ctx, id);
      try {
        let owner = { uid: 0, gid: 0 };
        if (config.User) {
          try {
            owner = await resolveUserInRootfs(run.ctx, rootfs, config.User);
          } catch (err) {
            throw berthError('InvalidArgument', `WORKDIR ${dir}: user "${config.User}": ${(err as Error).message}`, err);
          }
        }
        return (await makeWorkdir(run.ctx, rootfs, dir, owner)) > 0;
      } finally {
        await release();
      }
    });
    if (made) return made;
    st.config = { ...st.config, history: [...(st.config.history ?? []), { created: timestamp(run), created_by: createdBy, empty_layer: true }] };
    // Stored and cached as it is, so the next build takes it without a container.
    return (await this.#materialize(run, st)).id;
  }

  /** A created (never started) container of image `id`, its rootfs mounted for reading. */
  async #openImage(run: BuildRun, id: string): Promise<{ rootfs: string; release: () => Promise<void> }> {
    const c = await this.#d.containers.create(run.ctx, { image: id, labels: { 'berth.build': run.id }, network: { mode: 'none' }, cmd: ['true'], entrypoint: [] });
    try {
      const { rootfs, release } = await this.#d.containers.rootfsOf(run.ctx, c.id);
      return {
        rootfs,
        release: async () => {
          await release();
          await this.#d.containers.remove(cleanupCtx(run.ctx), c.id).catch(() => {});
        },
      };
    } catch (err) {
      await this.#d.containers.remove(cleanupCtx(run.ctx), c.id).catch(() => {});
      throw err;
    }
  }

  /** Create a container for the step, let `work` change it, and commit it as the stage's new image (unless `work` says it changed nothing). */
  async #inContainer(run: BuildRun, st: StageState, step: number, config: ContainerConfig, createdBy: string, work: (id: string) => Promise<void | boolean>): Promise<string | undefined> {
    const t0 = performance.now();
    let worked: number | undefined;
    let committed: number | undefined;
    const c = await this.#d.containers.create(run.ctx, config);
    run.emit({ kind: 'container', step, id: c.id });
    try {
      if ((await work(c.id)) === false) return undefined;
      worked = performance.now();
      const id = await this.#d.containers.commit(run.ctx, c.id, { config: st.config.config ?? {}, createdBy, history: st.config.history ?? [], pause: false, created: timestamp(run), ...(run.epoch !== undefined ? { clampMtime: run.epoch } : {}), compression: this.#d.config.compression, compressionLevel: this.#d.config.compressionLevel, consumeLayer: true });
      committed = performance.now();
      run.made.add(id);
      st.image = await this.#find(run, id);
      st.config = structuredClone(st.image.config);
      st.dirty = false;
      await this.#remember(run, st, st.image.manifest.layers.at(-1)?.size ?? 0);
      return id;
    } finally {
      await this.#d.containers.remove(cleanupCtx(run.ctx), c.id).catch(() => {});
      // Where a step's time went (the container's work, the layer's commit), for the build's figures.
      const ms = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? Math.round(b - a) : undefined);
      run.ctx.log.debug('build step', { build: run.id, step, workMs: ms(t0, worked), commitMs: ms(worked, committed), totalMs: ms(t0, performance.now()) });
    }
  }

  /** The ID of an image holding the stage's layers, stored now if the stage has none yet (scratch). */
  async #parentId(run: BuildRun, st: StageState): Promise<string> {
    if (st.image) return st.image.id;
    return (await this.#materialize(run, st)).id;
  }

  /** The stage's image as it stands, stored if the config moved on since the last one; cached by key. */
  async #materialize(run: BuildRun, st: StageState): Promise<BuildImage> {
    if (st.image && !st.dirty) return st.image;
    if (await this.#cached(run, st, 0)) return st.image!;
    const diffIds = st.config.rootfs.diff_ids;
    const config: ImageConfig = { ...st.config, created: timestamp(run) };
    const id = await this.#d.images.record(run.ctx, { config, layers: st.image?.manifest.layers ?? [], ...(diffIds.length ? { topSnapshot: chainId(diffIds) } : {}) });
    run.made.add(id);
    st.image = await this.#find(run, id);
    st.config = structuredClone(st.image.config);
    st.dirty = false;
    await this.#remember(run, st, 0);
    return st.image;
  }

  /** Take the cached image of the stage's key, when there is one and the build may use it. */
  async #cached(run: BuildRun, st: StageState, step: number, createdBy?: string): Promise<boolean> {
    if (run.input.request.noCache) return false;
    const hit = await this.#d.cache.get(run.ctx, st.key);
    if (!hit) return createdBy !== undefined && this.#fromCacheImages(run, st, step, createdBy);
    try {
      // Only a record made here is dropped at the end: an image named before the build keeps its name.
      this.#hold(run, hit.imageId);
      if (await this.#d.images.ensureRecord(run.ctx, hit.imageId, hit.target)) run.made.add(hit.imageId);
      st.image = await this.#find(run, hit.imageId);
    } catch (err) {
      if (kindOf(err) === 'Canceled') throw err;
      await this.#d.cache.delete(run.ctx, st.key).catch(() => {});
      return false;
    }
    st.config = structuredClone(st.image.config);
    st.dirty = false;
    if (step) run.emit({ kind: 'cached', step, id: hit.imageId });
    return true;
  }

  /**
   * `--cache-from`, as docker's legacy builder matches: an image whose
   * history so far is the stage's (by what made each entry) and whose next
   * entry is this step's gives the step its layer, without running it.
   */
  async #fromCacheImages(run: BuildRun, st: StageState, step: number, createdBy: string): Promise<boolean> {
    const have = st.config.history ?? [];
    const diffs = st.config.rootfs.diff_ids;
    const same = (a: { created_by?: string; empty_layer?: boolean }, b: { created_by?: string; empty_layer?: boolean }) => a.created_by === b.created_by && !!a.empty_layer === !!b.empty_layer;
    for (const c of run.cacheFrom) {
      const theirs = c.config.history ?? [];
      const next = theirs[have.length];
      const cd = c.config.rootfs.diff_ids;
      if (!next || next.empty_layer || next.created_by !== createdBy || !have.every((h, i) => same(h, theirs[i]))) continue;
      if (cd.length <= diffs.length || !diffs.every((d, i) => cd[i] === d)) continue;
      const diffIds = [...diffs, cd[diffs.length]];
      const config: ImageConfig = { ...st.config, created: next.created ?? timestamp(run), rootfs: { type: 'layers', diff_ids: diffIds }, history: [...have, next] };
      const layers = [...(st.image?.manifest.layers ?? []), c.manifest.layers[diffs.length]];
      const id = await this.#d.images.record(run.ctx, { config, layers, topSnapshot: chainId(diffIds) });
      run.made.add(id);
      st.image = await this.#find(run, id);
      st.config = structuredClone(st.image.config);
      st.dirty = false;
      await this.#remember(run, st, layers.at(-1)?.size ?? 0);
      run.emit({ kind: 'cached', step, id });
      return true;
    }
    return false;
  }

  async #remember(run: BuildRun, st: StageState, size: number): Promise<void> {
    const image = st.image!;
    const leaseId = `build-cache.${st.key.slice(7)}`;
    try {
      await this.#d.leases.create(run.ctx, { id: leaseId, labels: { [CACHE_LEASE_LABEL]: '1' } });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    await this.#d.leases.addResource(run.ctx, leaseId, { kind: 'content', id: image.target.digest });
    await this.#d.cache.put(run.ctx, { key: st.key, imageId: image.id, target: image.target, leaseId, size });
  }

}

async function treeBytes(p: string): Promise<number> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const c of await readdir(p)) n += await treeBytes(path.join(p, c));
  return n;
}



function sourceDateEpoch(args: Record<string, string> | undefined): number | undefined {
  const v = args?.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v)) throw berthError('InvalidArgument', `SOURCE_DATE_EPOCH "${v}" is not a number of seconds since 1970`);
  return Number(v);
}



export type { ImageConfigFields };
