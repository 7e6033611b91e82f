import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, open, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { IgnoreMatcher } from '../core/dockerignore.ts';
import { berthError } from '../core/errors.ts';
import { applyLayer } from '../snapshots/apply.ts';
import { resolveInRoot, resolveUserInRootfs } from '../runtime/oci/rootfs-files.ts';
import { expandHeredoc, expandWord } from './config-steps.ts';
import { cleanContextPath } from './context.ts';
import { contentDigest, copyInto, matchSources, writeInto, type SourceEntry } from './copy.ts';
import { flagValue, parseError, type Instruction, type InstructionOf, type Stage } from './dockerfile.ts';
import { contextIgnored, hashKey, noteArgs, type BuildRun, type StageState, type StepHost } from './state.ts';

/*
 * COPY and ADD: sources from the context, a heredoc, a stage or an image
 * (`--from`), or for ADD a URL; the destination resolved against WORKDIR
 * (a trailing `/` or several sources make it a directory); written into a
 * created container's mounted rootfs with `--chown` (names looked up in
 * the image) and `--chmod`; ADD unpacks a local tar. The step's key holds
 * the content digest of its sources and the values it expanded.
 */

export async function copyStep(host: StepHost, run: BuildRun, stage: Stage, st: StageState, ins: InstructionOf<'COPY' | 'ADD'>, step: number): Promise<string | undefined> {
  const scope = host.scope(run, st, new Set());
  const ex = (w: string) => expandWord(ins, w, scope);
  const isAdd = ins.kind === 'ADD';
  const from = ins.kind === 'COPY' ? flagValue(ins, 'from') : undefined;
  // --link is taken as a plain copy: the layer is the same, only its rebasing (which berth does not do) differs.
  if (flagValue(ins, 'keep-git-dir') !== undefined) throw parseError(ins.pos, `${ins.kind} --keep-git-dir is not supported by berth: it has no git sources`);
  const parents = flagValue(ins, 'parents') !== undefined;
  // --exclude patterns match a path from the context root, or from the directory being copied.
  const excludes = ins.flags.filter((f) => f.name === 'exclude').map((f) => expandWord(ins, f.value ?? '', scope));
  const excluder = excludes.length ? new IgnoreMatcher(excludes) : undefined;
  const checksumFlag = flagValue(ins, 'checksum');
  const checksum = checksumFlag === undefined ? undefined : expandWord(ins, checksumFlag, scope);
  if (checksum !== undefined && !/^sha256:[0-9a-f]{64}$/.test(checksum)) throw parseError(ins.pos, `ADD --checksum=${checksum}: want sha256: and 64 hex digits`);
  const chownFlag = flagValue(ins, 'chown');
  const chown = chownFlag === undefined ? undefined : ex(chownFlag);
  const chmodText = flagValue(ins, 'chmod');
  let mode: number | undefined;
  if (chmodText !== undefined) {
    const m = ex(chmodText);
    if (!/^[0-7]{3,4}$/.test(m)) throw parseError(ins.pos, `${ins.kind} --chmod=${m}: want an octal mode such as 0644`);
    mode = parseInt(m, 8);
  }
  const workdir = st.config.config?.WorkingDir || '/';
  let dest = ex(ins.dest);
  const trailing = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  dest = path.posix.resolve(workdir, dest) + (trailing && !dest.endsWith('/') ? '/' : trailing ? '/' : '');
  if (dest === '//') dest = '/';
  // Sources: heredocs, URLs (ADD), then paths in the context or in the --from root.
  const heredocs = new Map(ins.heredocs.map((h) => [h.name, h]));
  let srcRoot = run.context.dir;
  let release: (() => Promise<void>) | undefined;
  let what = 'build context';
  // A context read in place: .dockerignore on every read, and file hashes kept between builds.
  const ignored = from === undefined ? contextIgnored(run) : undefined;
  const inPlace = from === undefined && run.context.inPlace;
  try {
    if (from !== undefined) {
      const name = expandWord(ins, from, host.scope(run, undefined, new Set()));
      const opened = await host.openImage(run, (await host.imageFor(run, stage, name, step)).id);
      srcRoot = opened.rootfs;
      release = opened.release;
      what = `stage or image "${name}"`;
    }
    const entries: SourceEntry[] = [];
    const inline: Array<{ name: string; content: string }> = [];
    const urls: string[] = [];
    for (const raw of ins.sources) {
      const hm = /^\d*<<-?(["']?)([A-Za-z_][A-Za-z0-9_]*)\1$/.exec(raw);
      const h = hm ? heredocs.get(hm[2]) : undefined;
      if (h) {
        inline.push({ name: h.name, content: h.expand ? expandHeredoc(ins, h.content, scope) : h.content });
        continue;
      }
      const src = ins.json ? raw : ex(raw);
      if (isAdd && /^https?:\/\//i.test(src)) {
        urls.push(src);
        continue;
      }
      const matched = (await matchSources(run.ctx, srcRoot, cleanContextPath(src), what, ignored)).filter((e) => !excluder?.ignored(e.rel));
      if (matched.length === 0) throw berthError('NotFound', `${what}: "${src}": every match is excluded by --exclude`);
      entries.push(...matched);
    }
    noteArgs(run, st, scope.used);
    const excludeUnder = (e: SourceEntry) => {
      if (!excluder && !ignored) return undefined;
      const fromRoot = (rel: string) => (e.rel ? `${e.rel}/${rel}` : rel);
      return (rel: string) => !!excluder?.ignored(rel) || !!excluder?.ignored(fromRoot(rel)) || !!ignored?.(fromRoot(rel));
    };
    // Sources from the context are copied as root's (or --chown's), whatever their owner.
    const digestOpts = { ownersAsRoot: from === undefined, ...(inPlace ? { hashes: host.hashes } : {}) };
    let digest = await contentDigest(run.ctx, entries.filter((e) => !e.st.isDirectory()), digestOpts);
    for (const e of entries.filter((x) => x.st.isDirectory())) digest += await contentDigest(run.ctx, [e], { ...digestOpts, exclude: excludeUnder(e) });
    const sourceCount = entries.length + inline.length + urls.length;
    if (sourceCount > 1 && !dest.endsWith('/')) throw parseError(ins.pos, `When using ${ins.kind} with more than one source file, the destination must be a directory and end with a /`);
    const kindWord = entries.length + inline.length + urls.length > 1 ? 'multi' : entries[0]?.st.isDirectory() ? 'dir' : 'file';
    const createdBy = `${st.shell.join(' ')} #(nop) ${ins.kind} ${kindWord}:${createHash('sha256').update(digest).digest('hex')} in ${dest} `;
    const usedValues = [...scope.used].sort().map((u) => [u, scope.lookup(u) ?? null]);
    // A URL is fetched every time, as Docker does; what it gave is part of the key.
    if (checksum !== undefined && (urls.length !== 1 || entries.length + inline.length > 0)) throw parseError(ins.pos, 'ADD --checksum needs exactly one source, a URL');
    const downloads = await Promise.all(urls.map((u, i) => download(run, u, i, host.deps.config.maxContextBytes)));
    if (checksum !== undefined) {
      const got = `sha256:${createHash('sha256').update(readFileSync(downloads[0].file)).digest('hex')}`;
      if (got !== checksum) throw berthError('InvalidArgument', `ADD ${urls[0]}: checksum mismatch: the download is ${got}, --checksum says ${checksum}`);
    }
    const fetched = await contentDigest(run.ctx, await Promise.all(downloads.map(async (d) => ({ abs: d.file, rel: d.name, st: await stat(d.file) }))));
    st.key = hashKey(st.key, ins.kind, ins.original, JSON.stringify(usedValues), dest, digest, JSON.stringify(inline), JSON.stringify(urls), fetched);
    if (await host.cached(run, st, step, createdBy)) return st.image!.id;
    return await host.inContainer(run, st, step, { image: await host.parentId(run, st), labels: { 'berth.build': run.id }, network: { mode: 'none' } }, createdBy, async (id) => {
      const { rootfs, release: done } = await host.deps.containers.rootfsOf(run.ctx, id);
      try {
        const who = chown !== undefined ? await owner(run, ins, rootfs, chown) : from === undefined ? { uid: 0, gid: 0 } : undefined;
        const opts = { ...(who ? { owner: who } : {}), ...(mode !== undefined ? { mode } : {}) };
        for (const e of entries) {
          // --parents keeps the source's directories (from the context root) under the destination.
          const parentDirs = parents ? (e.st.isDirectory() ? e.rel : path.posix.dirname(e.rel)) : '.';
          const target = parentDirs === '.' || parentDirs === '' ? dest : `${path.posix.join(dest, parentDirs)}/`;
          if (isAdd && e.st.isFile() && (await isArchive(e.abs))) await unpack(run, rootfs, e.abs, target);
          else await copyInto(run.ctx, rootfs, [e], target, { ...opts, exclude: excludeUnder(e) });
        }
        for (const h of inline) await writeInto(run.ctx, rootfs, dest.endsWith('/') ? path.posix.join(dest, h.name) : dest, h.content, opts);
        for (const d of downloads) {
          const target = dest.endsWith('/') ? path.posix.join(dest, d.name) : dest;
          await copyInto(run.ctx, rootfs, [{ abs: d.file, rel: d.name, st: await stat(d.file) }], target, { owner: who ?? { uid: 0, gid: 0 }, mode: mode ?? 0o600 });
        }
      } finally {
        await done();
      }
    });
  } finally {
    await release?.();
  }
}

async function owner(run: BuildRun, ins: Instruction, rootfs: string, chown: string): Promise<{ uid: number; gid: number }> {
  try {
    const u = await resolveUserInRootfs(run.ctx, rootfs, chown);
    // As Docker: a user without a group gets its uid as gid, not its primary group.
    return { uid: u.uid, gid: chown.includes(':') ? u.gid : u.uid };
  } catch (err) {
    throw parseError(ins.pos, `--chown=${chown}: ${(err as Error).message}`, err);
  }
}

async function unpack(run: BuildRun, rootfs: string, archive: string, dest: string): Promise<void> {
  const clean = path.posix.normalize('/' + dest);
  const host = await resolveInRoot(run.ctx, rootfs, clean);
  await mkdir(host, { recursive: true, mode: 0o755 });
  await applyLayer(run.ctx, host, createReadStream(archive), { format: 'plain' });
}

async function download(run: BuildRun, url: string, i: number, maxBytes: number): Promise<{ file: string; name: string }> {
  const file = path.join(run.dir, `download-${i}`);
  const res = await fetch(url, { signal: run.ctx.signal, redirect: 'follow' }).catch((err: unknown) => {
    throw berthError('Unavailable', `ADD ${url}: ${(err as Error).message}`, err);
  });
  if (!res.ok || !res.body) throw berthError('NotFound', `ADD ${url}: the server answered ${res.status} ${res.statusText}`);
  let seen = 0;
  // The same bound as a context's: a download may not fill the disk either.
  const bound = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > maxBytes) done(berthError('ResourceExhausted', `ADD ${url}: larger than the limit of ${maxBytes} bytes (build.max_context_bytes)`));
      else done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as WebReadableStream), bound, createWriteStream(file, { mode: 0o600 }));
  // As Docker: the file's time is the server's Last-Modified, when it says.
  const modified = Date.parse(res.headers.get('last-modified') ?? '');
  if (Number.isFinite(modified)) await utimes(file, new Date(modified), new Date(modified));
  const name = path.posix.basename(new URL(url).pathname) || 'index.html';
  return { file, name };
}

/** A tar (plain, gzip or zstd) that ADD unpacks instead of copying, recognised by its first bytes as Docker does. */
async function isArchive(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return true;
    if (bytesRead >= 4 && buf.readUInt32LE(0) === 0xfd2fb528) return true;
    return bytesRead >= 262 && buf.toString('latin1', 257, 262) === 'ustar';
  } finally {
    await fh.close();
  }
}
