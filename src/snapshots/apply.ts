import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zlibModule } from '../core/builtins.ts';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { chunksOf } from '../core/chunks.ts';
import { berthError } from '../core/errors.ts';
import { readTar } from '../core/tar-read.ts';
import { Extractor } from './extract.ts';

/**
 * The layer applier: decompress a layer tar and write it into a snapshot's
 * directory, returning the layer's diff ID (sha256 of the uncompressed tar).
 *
 * `format` says what the directory is:
 * - 'overlay': an empty directory that becomes an overlayfs layer (an
 *   active overlay snapshot prepared without a parent is exactly that).
 *   Whiteouts are written in overlay's own format: `.wh.NAME` becomes a 0/0
 *   character device NAME, `.wh..wh..opq` sets trusted.overlay.opaque=y on
 *   its directory.
 * - 'plain': a full tree the layer is applied onto (the copy snapshotter, or
 *   an overlay mount of the parent chain). Whiteouts delete: `.wh.NAME`
 *   removes NAME, `.wh..wh..opq` removes whatever the directory held that
 *   this layer did not write.
 *
 * 'naive' is accepted as another name for 'plain' (containerd calls the copy
 * snapshotter "native" and its diff format "naive").
 *
 * Compression (gzip, zstd or none) is detected from the magic bytes, so an
 * already decompressed stream is fine too.
 *
 * Safety: nothing is written outside `dir`. An entry whose path escapes with
 * `..`, goes through a symlink that leads outside (absolute or climbing
 * out), or is a hard link to something outside the layer is refused with
 * InvalidArgument naming the entry; absolute names are taken relative to
 * `dir`, as docker does. Symlinks are never followed out of the tree: a
 * relative symlink inside the tree may be a parent component and is then
 * resolved step by step with lstat. On any error the directory holds a
 * partial layer; the caller removes the snapshot.
 *
 *   const { diffId } = await applyLayer(ctx, upperDir, blobStream, { format: 'overlay' });
 */
export interface ApplyOptions {
  format: 'overlay' | 'plain' | 'naive';
  /**
   * Bound on the uncompressed tar's bytes: past it the unpack stops with
   * ResourceExhausted (a decompression bomb fills no disk). None when unset.
   */
  maxBytes?: number;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** The compression of a stream from its first bytes. */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

const CHUNK = 256 * 1024;

/** Read enough of `source` to see its magic, then give back an iterable of the whole stream. */
async function sniff(source: AsyncIterable<Uint8Array>): Promise<{ compression: Compression; stream: AsyncIterable<Uint8Array> }> {
  const it = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let len = 0;
  while (len < 4) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    len += r.value.length;
  }
  const compression = detectCompression(Buffer.concat(head));
  async function* all(): AsyncGenerator<Uint8Array> {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { compression, stream: all() };
}

/** The decompressor's error in a cause chain (it may surface inside an entry's data). */
function zlibError(err: unknown): { code: string; message: string } | undefined {
  for (let e = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) return { code, message: (e as Error).message };
  }
  return undefined;
}

/** Decompress (when needed) and apply the layer in `source` to `dir`. */
export async function applyLayer(ctx: Ctx, dir: string, source: AsyncIterable<Uint8Array>, opts: ApplyOptions): Promise<ApplyResult> {
  ctx.signal.throwIfAborted();
  const { compression, stream } = await sniff(source instanceof Readable ? chunksOf(source) : source);
  const hash = createHash('sha256');
  let size = 0;
  const maxBytes = opts.maxBytes && opts.maxBytes > 0 ? opts.maxBytes : Infinity;

  let tarStream: AsyncIterator<Uint8Array>;
  let decompressing: Promise<void> | undefined;
  if (compression === 'none') {
    tarStream = stream[Symbol.asyncIterator]();
  } else {
    const decomp = compression === 'gzip' ? zlibModule().createGunzip({ chunkSize: CHUNK }) : zlibModule().createZstdDecompress({ chunkSize: CHUNK });
    // Decompression runs on libuv's pool; a small buffer ahead of the parser lets it overlap file writes.
    const out = new PassThrough({ highWaterMark: 4 * CHUNK });
    decompressing = pipeline(Readable.from(stream, { objectMode: false, highWaterMark: CHUNK }), decomp, out, { signal: ctx.signal });
    decompressing.catch(() => {});
    tarStream = chunksOf(out);
  }

  // Hash every byte of the tar, including padding after the end-of-archive blocks.
  const hashed: AsyncIterator<Uint8Array> = {
    async next() {
      const r = await tarStream.next();
      if (!r.done) {
        hash.update(r.value);
        size += r.value.length;
        if (size > maxBytes) {
          throw berthError('ResourceExhausted', `unpacked layer is larger than the bound of ${maxBytes} bytes (images.max_layer_unpacked_mib); unpacking stopped`);
        }
      }
      return r;
    },
  };
  const tarSource: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({ next: () => hashed.next(), return: async () => ({ done: true, value: undefined }) }),
  };

  const ex = new Extractor(dir, opts.format === 'overlay' ? 'overlay' : 'plain');
  try {
    for await (const entry of readTar(tarSource)) {
      ctx.signal.throwIfAborted();
      await ex.apply(entry);
    }
    for (;;) {
      if ((await hashed.next()).done) break;
    }
    if (decompressing) await decompressing;
    ex.finish();
  } catch (err) {
    // Stop reading, without waiting for it: the source may be blocked on bytes its producer only
    // sends after hearing of this failure (a download feeding the applier as it arrives), so
    // waiting here would wait for the whole layer. The caller ends the source.
    void tarStream.return?.()?.catch(() => {});
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const z = zlibError(err);
    if (z?.code === 'Z_BUF_ERROR') throw berthError('DataLoss', `layer: truncated ${compression} stream: ${z.message}`, err);
    if (z) throw berthError('InvalidArgument', `layer: corrupt ${compression} stream: ${z.message}`, err);
    throw err;
  }
  return { diffId: `sha256:${hash.digest('hex')}`, size };
}
