import { randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { IgnoreMatcher, parseIgnoreFile } from '../core/dockerignore.ts';
import { berthError } from '../core/errors.ts';
import type { TarItem } from '../core/tar-write.ts';
import { tarStream } from '../core/tar-write.ts';

/**
 * The build context as the CLI sends it, as docker's CLI makes it: the
 * directory's tree as a tar, every entry owned by 0:0, without what
 * `.dockerignore` (or `<Dockerfile>.dockerignore`) leaves out, the
 * Dockerfile and the ignore file always in. A Dockerfile outside the
 * context (or read from stdin) travels inside it under a name of its own.
 */
export interface PackedContext {
  tar: Readable;
  /** The Dockerfile's path inside the tar. */
  dockerfile: string;
}

export async function packDirectory(dir: string, opts: { dockerfile?: string; dockerfileText?: string }): Promise<PackedContext> {
  const root = path.resolve(dir);
  const st = await lstat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw berthError('InvalidArgument', `unable to prepare context: path "${dir}" not found or not a directory`);
  let dockerfile = 'Dockerfile';
  let extra: { name: string; text: string } | undefined;
  if (opts.dockerfileText !== undefined) {
    dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
    extra = { name: dockerfile, text: opts.dockerfileText };
  } else if (opts.dockerfile) {
    const abs = path.resolve(opts.dockerfile);
    const rel = path.relative(root, abs);
    if (!rel.startsWith('..') && !path.isAbsolute(rel)) {
      dockerfile = rel.split(path.sep).join('/');
    } else {
      const text = await readFile(abs, 'utf8').catch(() => {
        throw berthError('NotFound', `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${abs}: no such file or directory`);
      });
      dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
      extra = { name: dockerfile, text };
    }
  }
  if (!extra) {
    const df = await lstat(path.join(root, dockerfile)).catch(() => undefined);
    if (!df) throw berthError('NotFound', `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${path.join(root, dockerfile)}: no such file or directory`);
  }
  const ignoreText = (await readFile(path.join(root, `${dockerfile}.dockerignore`), 'utf8').catch(() => undefined)) ?? (await readFile(path.join(root, '.dockerignore'), 'utf8').catch(() => ''));
  const ignore = new IgnoreMatcher(parseIgnoreFile(ignoreText));
  const keep = new Set([dockerfile, '.dockerignore', `${dockerfile}.dockerignore`]);
  function* items(): Generator<TarItem> {
    if (extra) yield { entry: { name: extra.name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: Buffer.byteLength(extra.text), mtime: 0 }, body: extra.text };
    yield* walk(root, '', ignore, keep, new Map());
  }
  return { tar: tarStream(items()), dockerfile };
}

/** A context of the Dockerfile alone (`berth build - < Dockerfile`). */
export function packDockerfileOnly(text: string): PackedContext {
  return {
    tar: tarStream([{ entry: { name: 'Dockerfile', type: 'file', mode: 0o644, uid: 0, gid: 0, size: Buffer.byteLength(text), mtime: 0 }, body: text }]),
    dockerfile: 'Dockerfile',
  };
}

/**
 * The context's entries, read with synchronous calls and yielded by a
 * synchronous generator: the CLI does nothing else meanwhile, and a
 * thread-pool round trip per small call cost more than the call (three per
 * file, most of the time it took to send a context of thousands of small
 * files), as did a promise per entry and level of an async generator.
 */
function* walk(root: string, rel: string, ignore: IgnoreMatcher, keep: Set<string>, links: Map<string, string>): Generator<TarItem> {
  const names = readdirSync(rel ? `${root}/${rel}` : root).sort();
  for (const name of names) {
    const child = rel ? `${rel}/${name}` : name;
    const abs = `${root}/${child}`;
    const st = lstatSync(abs);
    const ignored = !keep.has(child) && ignore.ignored(child);
    if (ignored && !(st.isDirectory() && ignore.mayHoldException(child))) continue;
    const common = { mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      if (!ignored) yield { entry: { name: `${child}/`, type: 'dir', ...common } };
      yield* walk(root, child, ignore, keep, links);
    } else if (st.isSymbolicLink()) {
      yield { entry: { name: child, type: 'symlink', linkname: readlinkSync(abs), ...common } };
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first) {
        yield { entry: { name: child, type: 'hardlink', linkname: first, ...common } };
        continue;
      }
      if (st.nlink > 1) links.set(key, child);
      // A small file in one read: a stream per file costs more than the file.
      yield { entry: { name: child, type: 'file', size: st.size, ...common }, body: st.size <= 1 << 20 ? readFileSync(abs) : createReadStream(abs) };
    }
  }
}

/** Whether the first bytes of stdin are an archive (tar, gzip, zstd) rather than a Dockerfile. */
export function looksLikeArchive(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true;
  return head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar';
}
