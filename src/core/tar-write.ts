import { Readable } from 'node:stream';
import { berthError } from './errors.ts';

/**
 * A small tar writer: POSIX ustar headers, with pax extended headers when a
 * field does not fit (long names and link targets, non-ASCII names, large
 * sizes or ids, xattrs). GNU tar, Go's archive/tar and containerd's layer
 * applier read this format.
 *
 * Pure encoding lives in `encodeHeader`; `tarStream` turns a sequence of
 * entries and bodies into a Readable with backpressure (bodies are streamed,
 * never buffered whole).
 *
 * Example:
 *   const tar = tarStream((async function* () {
 *     yield { entry: { name: 'etc/', type: 'dir', mode: 0o755 } };
 *     yield { entry: { name: 'etc/hostname', type: 'file', size: 5 }, body: Buffer.from('box\n') };
 *   })());
 *   await pipeline(tar, createWriteStream('layer.tar'));
 */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** Path inside the archive, no leading slash; directories may end in `/`. */
  name: string;
  type: TarEntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch. */
  mtime?: number;
  /** Body size; files only. */
  size?: number;
  /** Target of a symlink or hardlink. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as pax `SCHILY.xattr.NAME` records. */
  xattrs?: Record<string, string | Buffer>;
}

const BLOCK = 512;
const typeFlags: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** Zero bytes that pad a body of `size` to a whole block (a view of one shared zero block: read it, never write it). */
export function tarPadding(size: number): Buffer {
  const rem = size % BLOCK;
  return ZERO_BLOCK.subarray(0, rem === 0 ? 0 : BLOCK - rem);
}

const isAscii = (s: string) => /^[\x20-\x7e]*$/.test(s);

function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return { prefix, name: rest };
  }
  return undefined;
}

/** One pax record: `LEN key=value\n` where LEN counts the whole record. */
function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

// A layer of thousands of small files is thousands of headers, and berthd runs
// without an optimising compiler (bin/berthd): the header is filled in place
// from a template, without a Buffer or string per field or a byte iterator
// for the checksum (these made the header the largest JS cost of a build's
// COPY commit, and most of its garbage).

/** Writes `s` (UTF-8, cut at `length` bytes) over zeros; returns the sum of the bytes written, for the checksum. */
function writeString(buf: Buffer, s: string, offset: number, length: number): number {
  if (s.length === 0) return 0;
  let sum = 0;
  if (Buffer.byteLength(s) === s.length) {
    const n = Math.min(s.length, length);
    buf.write(s, offset, n, 'latin1');
    for (let i = 0; i < n; i++) sum += s.charCodeAt(i);
    return sum;
  }
  const b = Buffer.from(s);
  const n = Math.min(b.length, length);
  b.copy(buf, offset, 0, n);
  for (let i = 0; i < n; i++) sum += b[i];
  return sum;
}

/** `length - 1` octal digits, zero-padded, and a NUL; returns the sum of the bytes written. */
function writeOctal(buf: Buffer, n: number, offset: number, length: number): number {
  let v = Math.floor(n);
  let sum = 0;
  if (v < 0 || v >= 8 ** (length - 1)) {
    // Does not fit (callers check the fields that may not): the leading digits, as the field always held.
    buf.write(v.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
    for (let i = offset; i < offset + length; i++) sum += buf[i];
    return sum;
  }
  for (let i = offset + length - 2; i >= offset; i--) {
    const digit = 0x30 + (v % 8);
    buf[i] = digit;
    sum += digit;
    v = Math.floor(v / 8);
  }
  buf[offset + length - 1] = 0;
  return sum;
}

const fitsOctal = (n: number, length: number) => n >= 0 && n < 8 ** (length - 1);

/** What every ustar header holds whatever the entry: zeros, the magic and version, the checksum field as spaces while summing. */
const HEADER_TEMPLATE = (() => {
  const h = Buffer.alloc(BLOCK);
  h.write('        ', 148, 8, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  return h;
})();
const TEMPLATE_SUM = HEADER_TEMPLATE.reduce((a, b) => a + b, 0);

function ustarBlock(e: TarEntry, name: { prefix: string; name: string }, linkname: string, size: number, flag: string): Buffer {
  const h = Buffer.allocUnsafe(BLOCK);
  HEADER_TEMPLATE.copy(h, 0);
  // The checksum is the sum of the header's bytes (its own field as spaces): the template's and those written over its zeros.
  let sum = TEMPLATE_SUM;
  sum += writeString(h, name.name, 0, 100);
  sum += writeOctal(h, (e.mode ?? (e.type === 'dir' ? 0o755 : 0o644)) & 0o7777, 100, 8);
  sum += writeOctal(h, fitsOctal(e.uid ?? 0, 8) ? (e.uid ?? 0) : 0, 108, 8);
  sum += writeOctal(h, fitsOctal(e.gid ?? 0, 8) ? (e.gid ?? 0) : 0, 116, 8);
  sum += writeOctal(h, fitsOctal(size, 12) ? size : 0, 124, 12);
  sum += writeOctal(h, fitsOctal(e.mtime ?? 0, 12) ? (e.mtime ?? 0) : 0, 136, 12);
  h[156] = flag.charCodeAt(0);
  sum += h[156];
  sum += writeString(h, linkname, 157, 100);
  sum += writeString(h, e.uname ?? '', 265, 32);
  sum += writeString(h, e.gname ?? '', 297, 32);
  sum += writeOctal(h, e.devmajor ?? 0, 329, 8);
  sum += writeOctal(h, e.devminor ?? 0, 337, 8);
  sum += writeString(h, name.prefix, 345, 155);
  writeOctal(h, sum, 148, 7);
  h[155] = 0x20;
  return h;
}

/**
 * The header block(s) for one entry: a pax `x` header with its records
 * first when needed, then the ustar header. InvalidArgument for an empty
 * name or a link without a target.
 */
export function encodeHeader(e: TarEntry): Buffer {
  if (!e.name) throw berthError('InvalidArgument', 'tar entry: empty name');
  let name = e.name.replace(/^\/+/, '');
  if (e.type === 'dir' && !name.endsWith('/')) name += '/';
  const linkname = e.linkname ?? '';
  if ((e.type === 'symlink' || e.type === 'hardlink') && !linkname) {
    throw berthError('InvalidArgument', `tar entry "${name}": ${e.type} without a target`);
  }
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const pax: Buffer[] = [];
  let split = isAscii(name) ? splitUstarName(name) : undefined;
  if (!split) {
    pax.push(paxRecord('path', name));
    split = { prefix: '', name: Buffer.from(name).subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_') };
  }
  let link = linkname;
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    pax.push(paxRecord('linkpath', linkname));
    link = linkname.slice(0, 100).replace(/[^\x20-\x7e]/g, '_');
  }
  if (!fitsOctal(size, 12)) pax.push(paxRecord('size', String(size)));
  if (!fitsOctal(e.uid ?? 0, 8)) pax.push(paxRecord('uid', String(e.uid)));
  if (!fitsOctal(e.gid ?? 0, 8)) pax.push(paxRecord('gid', String(e.gid)));
  if (!fitsOctal(e.mtime ?? 0, 12)) pax.push(paxRecord('mtime', String(e.mtime)));
  for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = ustarBlock(e, split, link, size, typeFlags[e.type]);
  if (pax.length === 0) return main;
  const records = Buffer.concat(pax);
  const base = name.replace(/\/$/, '').split('/').pop() ?? 'entry';
  const paxName = { prefix: '', name: `PaxHeaders.0/${base}`.slice(0, 99).replace(/[^\x20-\x7e]/g, '_') };
  const paxHeader = ustarBlock({ name: paxName.name, type: 'file', mode: 0o644, mtime: e.mtime }, paxName, '', records.length, 'x');
  return Buffer.concat([paxHeader, records, tarPadding(records.length), main]);
}

export interface TarItem {
  entry: TarEntry;
  /** The body of a file entry; exactly `entry.size` bytes. */
  body?: Buffer | string | AsyncIterable<Buffer | Uint8Array | string>;
}

/**
 * A Readable tar archive of `items`, ended by two zero blocks. A body that
 * yields more or fewer bytes than `entry.size` fails the stream with
 * InvalidArgument, since the archive would be corrupt.
 */
export function tarStream(items: AsyncIterable<TarItem> | Iterable<TarItem>): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    // Headers, padding and small bodies are gathered and go out in batches (see BATCH_BYTES).
    let parts: Buffer[] = [];
    let bytes = 0;
    const add = (b: Buffer) => {
      parts.push(b);
      bytes += b.length;
    };
    const take = () => {
      const out = Buffer.concat(parts, bytes);
      parts = [];
      bytes = 0;
      return out;
    };
    for await (const { entry, body } of items) {
      add(encodeHeader(entry));
      if (entry.type === 'file') {
        const size = entry.size ?? 0;
        let written = 0;
        if (typeof body === 'string' || Buffer.isBuffer(body)) {
          const b = Buffer.from(body);
          written = b.length;
          if (written <= size) add(b);
        } else if (body !== undefined) {
          for await (const c of body) {
            const b = typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
            written += b.length;
            if (written > size) break;
            if (b.length < BATCH_BYTES) add(b);
            else {
              if (bytes) yield take();
              yield b;
            }
            if (bytes >= BATCH_BYTES) yield take();
          }
        }
        if (written !== size) {
          throw berthError('InvalidArgument', `tar entry "${entry.name}": body has ${written > size ? 'more than' : 'only'} ${written} bytes, header says ${size}`);
        }
        const pad = tarPadding(size);
        if (pad.length > 0) add(pad);
      }
      if (bytes >= BATCH_BYTES) yield take();
    }
    add(TAR_END);
    yield take();
  }
  return Readable.from(generate(), { objectMode: false });
}

/**
 * Headers, padding and small bodies go out in batches of about this many
 * bytes: every chunk costs the reader a round trip (a compressor's
 * thread-pool job, a hash update, a socket write), and a layer of thousands
 * of small files was thousands of them.
 */
const BATCH_BYTES = 256 * 1024;
