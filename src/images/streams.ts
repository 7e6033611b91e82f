import { PassThrough, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { berthError } from '../core/errors.ts';

/** Read a whole (small) stream, refusing more than `max` bytes. */
export async function readAllStream(stream: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > max) {
      stream.destroy();
      throw berthError('ResourceExhausted', `${what} is larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * The uncompressed bytes of a layer stream, whatever its compression
 * (detected from the magic bytes rather than trusted from the media type,
 * as containerd does).
 */
export function decompressed(src: Readable): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  void (async () => {
    const it = src[Symbol.asyncIterator]();
    let head = Buffer.alloc(0);
    let done = false;
    while (head.length < 4) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      head = Buffer.concat([head, r.value as Buffer]);
    }
    const kind = detectCompression(head);
    const target: NodeJS.WritableStream = kind === 'gzip' ? zlib.createGunzip() : kind === 'zstd' ? zlib.createZstdDecompress() : out;
    if (target !== out) {
      const z = target as unknown as Readable;
      z.on('error', (err) => out.destroy(berthError('DataLoss', `layer is not valid ${kind}: ${err.message}`, err)));
      z.pipe(out);
    }
    const w = target as unknown as PassThrough;
    out.once('close', () => {
      if (w !== out) w.destroy();
      src.destroy();
    });
    const write = async (b: Buffer) => {
      if (w.destroyed || out.destroyed) throw berthError('Canceled', 'layer consumer went away');
      if (!w.write(b)) await waitDrain(w);
    };
    if (head.length) await write(head);
    while (!done) {
      const r = await it.next();
      if (r.done) break;
      await write(r.value as Buffer);
    }
    w.end();
  })().catch((err) => out.destroy(err));
  return out;
}

/** Resolves when `w` drains or closes; rejects when it fails. */
export function waitDrain(w: NodeJS.EventEmitter & { destroyed?: boolean }): Promise<void> {
  if (w.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      w.off('drain', ok);
      w.off('close', ok);
      w.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    const ok = () => done();
    w.on('drain', ok);
    w.on('close', ok);
    w.on('error', done);
  });
}

/** A small counting semaphore for per-pull concurrency. */
export function limiter(max: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (active >= max) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

export { Readable };
