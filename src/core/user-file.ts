import type { FileHandle } from 'node:fs/promises';
import { berthError } from './errors.ts';

/**
 * Files a user names on the command line (`--env-file`, `--label-file`,
 * `--security-opt seccomp=FILE`) are read by the CLI, as docker's CLI reads
 * them, and only their content travels to berthd. A hosted command runs
 * this code inside berthd, so the read must never block its event loop or
 * fill its memory on the user's say-so:
 *
 * - the open is non-blocking (a FIFO's open would wait for a writer, even
 *   on the thread pool, and hold a thread for good);
 * - only a regular file is read (`/dev/zero`, a FIFO, a terminal or a
 *   socket is refused, naming the file);
 * - at most `limit` bytes are read, and the read stops when `signal`
 *   aborts (the hosted command's client went away).
 *
 * Errors are InvalidArgument, worded as docker's: `open FILE: no such file
 * or directory`, `open FILE: not a regular file`, `read FILE: larger than
 * the 1048576-byte limit`.
 *
 * Example: `await readUserFile('/home/u/app.env', { signal })`.
 */
export const USER_FILE_LIMIT = 1 << 20;

export async function readUserFile(file: string, opts: { limit?: number; signal?: AbortSignal; name?: string } = {}): Promise<string> {
  const limit = opts.limit ?? USER_FILE_LIMIT;
  // The name the user gave, for messages.
  const name = opts.name ?? file;
  // node:fs through getBuiltinModule: an ESM import of it builds a facade of every export on each start of the CLI.
  const fs = process.getBuiltinModule('node:fs');
  const { O_RDONLY, O_NONBLOCK, O_NOCTTY } = fs.constants;
  opts.signal?.throwIfAborted();
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(file, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    throw berthError('InvalidArgument', `open ${name}: ${describe(err)}`, err);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw berthError('InvalidArgument', `open ${name}: not a regular file`);
    if (st.size > limit) throw tooLarge(name, limit);
    const chunks: Buffer[] = [];
    let total = 0;
    // A regular file may still grow while it is read (or report size 0, as /proc's do): read to its end, within the limit.
    for (;;) {
      opts.signal?.throwIfAborted();
      const buf = Buffer.allocUnsafe(Math.min(64 << 10, limit + 1 - total));
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) throw tooLarge(name, limit);
      chunks.push(buf.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    await handle.close();
  }
}

function tooLarge(file: string, limit: number): Error {
  return berthError('InvalidArgument', `read ${file}: larger than the ${limit}-byte limit`);
}

function describe(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENXIO':
      return 'no such device or address';
    default:
      return (err as Error).message;
  }
}
