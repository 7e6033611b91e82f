import { lstat, mkdir, readdir, readFile, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { IgnoreMatcher, parseIgnoreFile } from '../core/dockerignore.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { applyLayer } from '../snapshots/apply.ts';
import { resolveInRoot } from '../runtime/oci/rootfs-files.ts';

/**
 * The build context on berthd's side: the tar the client sent, unpacked
 * into a private directory through the layer applier (so no entry can land
 * outside it), counted against the size bound as it arrives, with
 * `.dockerignore` (or `<Dockerfile>.dockerignore`) applied afterwards: the
 * docker CLI filters before it sends, other clients may not. berthd never
 * reads a path a client names outside this directory.
 */
export interface BuildContext {
  dir: string;
  dockerfile: string;
  dockerfileName: string;
  ignore: IgnoreMatcher;
  /**
   * The client's own directory, read where it is (`openContextDir`): never
   * written or removed, and `ignore` applies to every read of it.
   */
  inPlace: boolean;
}

export async function receiveContext(ctx: Ctx, dir: string, tar: Readable, opts: { maxBytes: number; dockerfile: string }): Promise<BuildContext> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > opts.maxBytes) done(berthError('ResourceExhausted', `build context is larger than the limit of ${opts.maxBytes} bytes (build.max_context_bytes); leave files out with .dockerignore`));
      else done(null, chunk);
    },
  });
  tar.on('error', (err) => counter.destroy(err));
  tar.pipe(counter);
  try {
    await applyLayer(ctx, dir, counter, { format: 'plain' });
  } catch (err) {
    tar.unpipe(counter);
    tar.resume();
    throw err;
  }
  const { name, dockerfile, ignore } = await readDockerfile(ctx, dir, opts.dockerfile);
  if (!ignore.empty) await removeIgnored(ctx, dir, '', ignore);
  return { dir, dockerfile, dockerfileName: name, ignore, inPlace: false };
}

/**
 * A context directory on berthd's host read where it is, for a client that
 * sees berthd's file system with root's rights (the native API checks the
 * caller): nothing is sent, unpacked or removed. `.dockerignore` is
 * applied on every read (`BuildContext.ignore`); one with exceptions (`!`)
 * is refused, as the reads could not leave a directory out while keeping
 * something under it: such a context is sent as a tar.
 */
export async function openContextDir(ctx: Ctx, dir: string, opts: { dockerfile: string }): Promise<BuildContext> {
  if (!path.isAbsolute(dir)) throw berthError('InvalidArgument', `context directory "${dir}" is not an absolute path`);
  let root: string;
  try {
    root = await realpath(dir);
    if (!(await lstat(root)).isDirectory()) throw berthError('InvalidArgument', `unable to prepare context: path "${dir}" is not a directory`);
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) throw berthError('NotFound', `unable to prepare context: path "${dir}" not found`);
    throw err;
  }
  const { name, dockerfile, ignore } = await readDockerfile(ctx, root, opts.dockerfile);
  if (ignore.hasExceptions) throw berthError('InvalidArgument', `context directory "${dir}": a .dockerignore with exceptions (!) needs the context sent as a tar`);
  return { dir: root, dockerfile, dockerfileName: name, ignore, inPlace: true };
}

/** The Dockerfile (a symlink followed inside the context only) and the ignore file that goes with it. */
async function readDockerfile(ctx: Ctx, dir: string, given: string): Promise<{ name: string; dockerfile: string; ignore: IgnoreMatcher }> {
  const opts = { dockerfile: given };
  const name = cleanContextPath(opts.dockerfile || 'Dockerfile');
  if (name === '') throw berthError('InvalidArgument', `the Dockerfile path "${opts.dockerfile}" names the context itself`);
  let dockerfile: string;
  try {
    // A Dockerfile that is a symlink is followed, inside the context only.
    const p = await resolveInRoot(ctx, dir, '/' + name);
    if (!(await lstat(p)).isFile()) throw berthError('InvalidArgument', `the Dockerfile "${opts.dockerfile}" in the build context is not a regular file`);
    dockerfile = await readFile(p, 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) throw berthError('NotFound', `Cannot locate specified Dockerfile: ${opts.dockerfile || 'Dockerfile'}`);
    throw err;
  }
  const ignoreText = (await readRegular(path.join(dir, `${name}.dockerignore`))) ?? (await readRegular(path.join(dir, '.dockerignore'))) ?? '';
  return { name, dockerfile, ignore: new IgnoreMatcher(parseIgnoreFile(ignoreText)) };
}

/** A regular file's text; undefined for anything else (a FIFO in a directory read in place would block a read). */
async function readRegular(file: string): Promise<string | undefined> {
  const st = await lstat(file).catch(() => undefined);
  return st?.isFile() ? readFile(file, 'utf8').catch(() => undefined) : undefined;
}

/** A client-named path inside the context: `/`-separated, relative, `..` clamped at the root. */
export function cleanContextPath(p: string): string {
  const out: string[] = [];
  for (const part of p.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

async function removeIgnored(ctx: Ctx, root: string, rel: string, ignore: IgnoreMatcher): Promise<void> {
  for (const name of await readdir(path.join(root, rel))) {
    ctx.signal.throwIfAborted();
    const child = rel ? `${rel}/${name}` : name;
    const abs = path.join(root, child);
    const isDir = (await lstat(abs)).isDirectory();
    if (ignore.ignored(child)) {
      if (isDir && ignore.mayHoldException(child)) await removeIgnored(ctx, root, child, ignore);
      else await rm(abs, { recursive: true, force: true });
    } else if (isDir) {
      await removeIgnored(ctx, root, child, ignore);
    }
  }
}
