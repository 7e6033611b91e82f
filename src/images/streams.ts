import type { Readable } from 'node:stream';
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

