import type { DeflateRaw } from 'node:zlib';
import { zlibModule } from '../core/builtins.ts';

/**
 * One gzip member (RFC 1952) around a raw deflate stream, which stores
 * rather than deflates the stretches of a layer that are compressed already
 * (a tarball, an archive, an image, a packed binary). Deflate cannot shrink
 * them, yet zlib still searches them for matches: ~52 MB/s at level 1 here,
 * the same as level 6, where a stored block costs a copy (a build's commit
 * of a 3 MB `.tar.gz` spent ~60 ms on it). Node's zlib changes the level
 * of a raw deflate stream but not of a gzip one (`params` does nothing
 * there), hence the header and trailer written here: the same bytes zlib's
 * gzip writes, so a layer with nothing to store comes out as it did.
 *
 * A chunk of at least `MIN_BYTES` is judged by the byte entropy of three
 * samples (start, middle, end) and stored only when all three look random;
 * the choice depends on the chunks alone, so the same input gives the same
 * blob. A switch of level is a zlib flush (a few bytes), so small chunks
 * never switch.
 */
export class GzipMember {
  static readonly MIN_BYTES = 64 * 1024;
  static readonly SAMPLE_BYTES = 1024;
  /** Bits per byte above which a sample counts as compressed (text is ~4-5.5; random bytes measure ~7.8 on 1 KiB). */
  static readonly RANDOM_BITS = 7.4;
  readonly deflate: DeflateRaw;
  readonly #level: number;
  #current: number;
  #crc = 0;
  #inputBytes = 0;
  readonly #counts = new Uint32Array(256);

  /** `pieceBytes`: how much compressed output zlib hands over at a time. */
  constructor(level: number, pieceBytes: number) {
    // zlib's own mapping of its default level, which the header's XFL byte reflects.
    this.#level = level === zlibModule().constants.Z_DEFAULT_COMPRESSION ? 6 : level;
    this.#current = this.#level;
    this.deflate = zlibModule().createDeflateRaw({ chunkSize: pieceBytes, level: this.#level });
  }

  /** The 10-byte header zlib writes: no name or time, XFL from the level, OS Unix. */
  header(): Buffer {
    const xfl = this.#level === 9 ? 2 : this.#level < 2 ? 4 : 0;
    return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
  }

  /** CRC-32 and size (mod 2^32) of everything passed to `before`. */
  trailer(): Buffer {
    const t = Buffer.alloc(8);
    t.writeUInt32LE(this.#crc, 0);
    t.writeUInt32LE(this.#inputBytes, 4);
    return t;
  }

  /** Accounts for `chunk` and sets the level it is to be deflated at; call it before writing the chunk. */
  async before(chunk: Buffer): Promise<void> {
    this.#crc = zlibModule().crc32(chunk, this.#crc);
    this.#inputBytes = (this.#inputBytes + chunk.length) % 2 ** 32;
    const want = chunk.length >= GzipMember.MIN_BYTES && this.#looksCompressed(chunk) ? zlibModule().constants.Z_NO_COMPRESSION : this.#level;
    if (want === this.#current) return;
    const d = this.deflate;
    // A stream that has failed or ended takes no new level (the caller's next write fails as it would have).
    if (d.destroyed || d.writableEnded) return;
    this.#current = want;
    // params() flushes, then sets the level in the flush's callback; Node asserts there that the stream
    // is still open, so the caller must neither destroy the stream nor stop reading it while this is
    // pending (see the commit's store loop). A close meanwhile still ends the wait.
    await new Promise<void>((resolve) => {
      const done = () => {
        d.off('close', done);
        resolve();
      };
      d.once('close', done);
      d.params(want, zlibModule().constants.Z_DEFAULT_STRATEGY, done);
    });
  }

  #looksCompressed(chunk: Buffer): boolean {
    const n = GzipMember.SAMPLE_BYTES;
    for (const at of [0, (chunk.length - n) >> 1, chunk.length - n]) {
      if (this.#bits(chunk, at, n) < GzipMember.RANDOM_BITS) return false;
    }
    return true;
  }

  #bits(chunk: Buffer, at: number, n: number): number {
    const counts = this.#counts;
    counts.fill(0);
    for (let i = at; i < at + n; i++) counts[chunk[i]]++;
    let bits = 0;
    for (let b = 0; b < 256; b++) {
      const c = counts[b];
      if (c) bits -= (c / n) * Math.log2(c / n);
    }
    return bits;
  }
}
