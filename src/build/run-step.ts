import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ContainerConfig, MountSpec } from '../core/containers.ts';
import { berthError, hasErrno, wrap } from '../core/errors.ts';
import { demux } from '../core/stdcopy.ts';
import { resolveInRoot } from '../runtime/oci/rootfs-files.ts';
import { commandArgs, DEFAULT_PATH, envLookup, expandWord } from './config-steps.ts';
import { cleanContextPath } from './context.ts';
import { contentDigest, copyInto, matchSources, type SourceEntry } from './copy.ts';
import { flagValue, parseError, type InstructionOf, type Stage } from './dockerfile.ts';
import { parseRunMount, type RunMount } from './run-mounts.ts';
import { argEnv as declaredArgEnv, contextIgnored, hashKey, noteArgs, type BuildRun, type StageState, type StepHost } from './state.ts';

/*
 * RUN: the command (exec form, or through the stage's SHELL; a heredoc as
 * the script) in a container of the step's parent image with the stage's
 * ENV, WORKDIR and USER and the declared args in its environment, on the
 * default network or none; its output streams as the step's log; its
 * changes become the step's layer. `--mount` adds read-only binds of the
 * context or of a stage or image, cache directories kept across builds,
 * and tmpfs; the mount points the runtime had to make stay out of the layer.
 */

/** Cache mounts used with sharing=locked or private, one user at a time (keyed by their directory). */
const locks = new Map<string, Promise<void>>();

export async function runStep(host: StepHost, run: BuildRun, stage: Stage, st: StageState, ins: InstructionOf<'RUN'>, step: number): Promise<string | undefined> {
  const given = run.input.request.network;
  const network = flagValue(ins, 'network') ?? (given === 'bridge' || !given ? 'default' : given);
  if (!['default', 'none', 'host'].includes(network)) throw parseError(ins.pos, `RUN --network=${network}: want default, none or host`);
  if (network === 'host') throw parseError(ins.pos, 'RUN --network=host is not allowed: it needs the network.host entitlement, which berth does not grant');
  if (flagValue(ins, 'security') !== undefined) throw parseError(ins.pos, 'RUN --security is not supported by berth: it needs the security.insecure entitlement, which berth does not grant');
  const mountScope = host.scope(run, st, new Set());
  const mounts = ins.flags.filter((f) => f.name === 'mount').map((f) => parseRunMount(ins, expandWord(ins, f.value ?? '', mountScope)));
  noteArgs(run, st, mountScope.used);
  let cmd: string[];
  if (ins.command.json) cmd = ins.command.args;
  else if (ins.heredocs.length && /^\d*<<-?["']?[A-Za-z_][A-Za-z0-9_]*["']?$/.test(ins.command.shell.trim())) cmd = [...st.shell, ins.heredocs[0].content];
  else if (ins.heredocs.length) cmd = [...st.shell, `${ins.command.shell}\n${ins.heredocs.map((h) => `${h.content}${h.name}`).join('\n')}\n`];
  else cmd = commandArgs(ins.command, st.shell);
  const argEnv = declaredArgEnv(st);
  for (const a of argEnv) run.usedArgs.add(a.slice(0, a.indexOf('=')));
  const createdBy = (argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : '') + cmd.join(' ');
  // Bind mounts are resolved first: what they show is part of the step's key, as in BuildKit.
  const binds = await bindMounts(host, run, stage, mounts, step);
  try {
    st.key = hashKey(st.key, 'run', JSON.stringify(cmd), network, JSON.stringify(argEnv), JSON.stringify(mounts), ...binds.map((b) => b.digest));
    if (await host.cached(run, st, step, createdBy)) return st.image!.id;
    return await runInContainer(host, run, st, ins, step, { cmd, argEnv, createdBy, network, mounts, binds });
  } finally {
    for (const b of binds) await b.release?.();
  }
}

/** Where each bind mount's source is on the host, and the digest of what it holds. */
async function bindMounts(host: StepHost, run: BuildRun, stage: Stage, mounts: RunMount[], step: number): Promise<Array<{ target: string; host: string; digest: string; release?: () => Promise<void> }>> {
  const out: Array<{ target: string; host: string; digest: string; release?: () => Promise<void> }> = [];
  try {
    for (const m of mounts) {
      if (m.type !== 'bind') continue;
      let root = run.context.dir;
      let release: (() => Promise<void>) | undefined;
      let what = 'build context';
      if (m.from !== undefined) {
        const opened = await host.openImage(run, (await host.imageFor(run, stage, m.from, step)).id);
        root = opened.rootfs;
        release = opened.release;
        what = `stage or image "${m.from}"`;
      }
      out.push({ target: m.target, host: '', digest: '', release });
      const ignored = m.from === undefined ? contextIgnored(run) : undefined;
      const entries = await matchSources(run.ctx, root, cleanContextPath(m.source), what, ignored);
      const e = entries[0];
      const under = ignored && ((rel: string) => ignored(e.rel ? `${e.rel}/${rel}` : rel));
      const inPlace = m.from === undefined && run.context.inPlace;
      out[out.length - 1].digest = await contentDigest(run.ctx, entries, { ...(under ? { exclude: under } : {}), ...(inPlace ? { hashes: host.hashes } : {}) });
      // A context read in place is the user's own directory: the container sees a copy, without what .dockerignore leaves out.
      out[out.length - 1].host = inPlace ? await contextCopy(run, e, under, out.length) : e.abs;
    }
    return out;
  } catch (err) {
    for (const b of out) await b.release?.();
    throw err;
  }
}

/** A private copy of a source of a context read in place, as a context sent as a tar would have it (root's, ignored paths left out). */
async function contextCopy(run: BuildRun, e: SourceEntry, exclude: ((rel: string) => boolean) | undefined, n: number): Promise<string> {
  const dir = path.join(run.dir, `bind-${n}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = e.st.isDirectory() ? '/' : `/${path.posix.basename(e.rel) || 'source'}`;
  await copyInto(run.ctx, dir, [e], target, { owner: { uid: 0, gid: 0 }, ...(exclude ? { exclude } : {}) });
  return e.st.isDirectory() ? dir : path.join(dir, target);
}

async function runInContainer(
  host: StepHost,
  run: BuildRun,
  st: StageState,
  ins: InstructionOf<'RUN'>,
  step: number,
  o: { cmd: string[]; argEnv: string[]; createdBy: string; network: string; mounts: RunMount[]; binds: Array<{ target: string; host: string }> },
): Promise<string | undefined> {
  const { cmd, argEnv, createdBy, network, mounts, binds } = o;
  const env = st.config.config?.Env ?? [];
  const config: ContainerConfig = {
    image: await host.parentId(run, st),
    entrypoint: [],
    cmd,
    env: [...(envLookup(env).has('PATH') ? [] : [`PATH=${DEFAULT_PATH}`]), ...env, ...argEnv, ...(run.epoch !== undefined && !argEnv.some((a) => a.startsWith('SOURCE_DATE_EPOCH=')) ? [`SOURCE_DATE_EPOCH=${run.epoch}`] : [])],
    ...(st.config.config?.WorkingDir ? { workingDir: st.config.config.WorkingDir } : {}),
    ...(st.config.config?.User ? { user: st.config.config.User } : {}),
    labels: { 'berth.build': run.id },
    network: { mode: network === 'none' ? 'none' : 'bridge' },
  };
  const specs: MountSpec[] = binds.map((b) => ({ type: 'bind', source: b.host, target: b.target, readOnly: true }));
  const unlocks: Array<() => void> = [];
  try {
    for (const m of mounts) {
      if (m.type === 'tmpfs') config.tmpfs = { ...config.tmpfs, [m.target]: m.size ? `size=${m.size}` : '' };
      if (m.type !== 'cache') continue;
      const dir = await cacheMountDir(host, run, m);
      if (m.sharing !== 'shared') unlocks.push(await lock(dir));
      specs.push({ type: 'bind', source: dir, target: m.target, readOnly: false });
    }
    if (specs.length) config.mounts = specs;
    return await runCommand(host, run, st, ins, step, config, createdBy, cmd, mounts.map((m) => m.target));
  } finally {
    for (const u of unlocks) u();
  }
}

/** The directory a cache mount keeps across builds (per namespace and id), made with the mount's owner and mode. */
async function cacheMountDir(host: StepHost, run: BuildRun, m: Extract<RunMount, { type: 'cache' }>): Promise<string> {
  const dir = path.join(host.deps.config.cacheMountDir, run.ctx.namespace, createHash('sha256').update(m.id).digest('hex').slice(0, 32));
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  try {
    await mkdir(dir, { mode: m.mode });
    await chown(dir, m.uid, m.gid);
    await chmod(dir, m.mode);
  } catch (err) {
    if (!hasErrno(err, 'EEXIST')) throw err;
  }
  return dir;
}

async function lock(key: string): Promise<() => void> {
  const prev = locks.get(key) ?? Promise.resolve();
  let unlock!: () => void;
  const next = new Promise<void>((r) => (unlock = r));
  const chained = prev.then(() => next);
  locks.set(key, chained);
  await prev;
  return () => {
    unlock();
    if (locks.get(key) === chained) locks.delete(key);
  };
}

async function runCommand(host: StepHost, run: BuildRun, st: StageState, ins: InstructionOf<'RUN'>, step: number, config: ContainerConfig, createdBy: string, cmd: string[], mountTargets: string[]): Promise<string | undefined> {
  return host.inContainer(run, st, step, config, createdBy, async (id) => {
    // Mount points the runtime makes for the step's mounts are not part of its layer, as in BuildKit.
    const stubs = mountTargets.length ? await missingPaths(host, run, id, mountTargets) : [];
    const { stream } = await host.deps.containers.attach(run.ctx, id);
    const exited = host.deps.containers.wait(run.ctx, id, 'next-exit');
    exited.catch(() => {});
    // The output goes out as events as it comes (the error below does not repeat it).
    const output = demux(stream as unknown as Readable, (_n, data) => run.emit({ kind: 'log', step, data: data.toString('utf8') })).catch(() => {});
    try {
      await host.deps.containers.start(run.ctx, id);
    } catch (err) {
      stream.destroy();
      throw wrap(err, `step ${step}/${run.total} ${ins.original}`);
    }
    const { exitCode, error } = await exited;
    await output;
    if (exitCode !== 0) {
      const err = berthError('Unknown', `step ${step}/${run.total} ${ins.original}: The command '${cmd.join(' ')}' returned a non-zero code: ${exitCode}${error ? ` (${error})` : ''}`);
      Object.assign(err, { exitCode });
      throw err;
    }
    if (stubs.length) await removeStubs(host, run, id, stubs);
  });
}

async function missingPaths(host: StepHost, run: BuildRun, id: string, targets: string[]): Promise<string[]> {
  const { rootfs, release } = await host.deps.containers.rootfsOf(run.ctx, id);
  try {
    const missing: string[] = [];
    for (const t of targets) {
      // The first missing component is what the runtime creates; below it everything is new too.
      let cur = '';
      for (const part of t.split('/').filter(Boolean)) {
        cur += `/${part}`;
        const host = await resolveInRoot(run.ctx, rootfs, cur);
        if (!(await lstat(host).catch(() => undefined))) {
          missing.push(cur);
          break;
        }
      }
    }
    return missing;
  } finally {
    await release();
  }
}

async function removeStubs(host: StepHost, run: BuildRun, id: string, stubs: string[]): Promise<void> {
  const { rootfs, release } = await host.deps.containers.rootfsOf(run.ctx, id);
  try {
    for (const s of stubs) {
      const host = await resolveInRoot(run.ctx, rootfs, s);
      await removeEmptyTree(host);
    }
  } finally {
    await release();
  }
}

/** Remove `p` if it is an empty file or a tree of empty directories and files (a mount point stub). */
async function removeEmptyTree(p: string): Promise<boolean> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return true;
  if (st.isFile()) {
    if (st.size > 0) return false;
    await rm(p, { force: true });
    return true;
  }
  if (!st.isDirectory()) return false;
  let empty = true;
  for (const child of await readdir(p)) if (!(await removeEmptyTree(path.join(p, child)))) empty = false;
  if (empty) await rm(p, { recursive: true, force: true });
  return empty;
}
