import { Readable } from 'node:stream';
import { berthError } from './errors.ts';

/**
 * A streaming tar reader: ustar, pax (local and global extended headers) and
 * the GNU long name / long link extensions. Sparse files are not supported.
 *
 * `readTar(source)` is an async iterator of entries. Each entry's data is
 * read from the same source with backpressure: the reader pulls the next
 * chunk only when the consumer asks for it. An entry's data must be read (or
 * ignored) before asking for the next entry; whatever is left is skipped.
 * Data chunks are zero-copy slices of the source's buffers.
 *
 *   for await (const e of readTar(gunzipped)) {
 *     if (e.type === 'file') await pipeline(e.stream(), createWriteStream(e.path));
 *   }
 *
 * Errors: InvalidArgument for a malformed archive (bad checksum, bad number,
 * unsupported entry), DataLoss when the stream ends inside an entry.
 */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface TarHeader {
  /** The name as stored (pax `path`, GNU long name, or ustar prefix/name); not normalised. */
  path: string;
  type: TarEntryType;
  /** Permission and special bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of data that follow (0 for everything but files). */
  size: number;
  /** Seconds since the epoch; fractional with pax. */
  mtime: number;
  atime?: number;
  /** Target of a symlink or hard link. */
  linkpath: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from pax `SCHILY.xattr.*` (and `LIBARCHIVE.xattr.*`), values as raw bytes. */
  xattrs: Map<string, Buffer>;
  /** Every pax record that applied to this entry, values as text. */
  pax: Record<string, string>;
}

export interface TarEntry extends TarHeader {
  /** The data, as chunks pulled on demand from the source. */
  chunks(): AsyncGenerator<Buffer>;
  /** The data as a Readable (backpressure through the same pull). */
  stream(): Readable;
  /** All of the data in one Buffer; for small entries (no copy when it is already buffered). */
  bytes(): Promise<Buffer>;
}

const BLOCK = 512;
const MAX_META = 16 * 1024 * 1024;

class Source {
  #it: AsyncIterator<Uint8Array>;
  #chunks: Buffer[] = [];
  #len = 0;
  #done = false;
  offset = 0;

  constructor(src: AsyncIterable<Uint8Array>) {
    this.#it = src[Symbol.asyncIterator]();
  }

  get buffered(): number {
    return this.#len;
  }

  /** Buffer at least n bytes; false if the source ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.#len < n) {
      if (this.#done) return false;
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        return this.#len >= n;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (b.length === 0) continue;
      this.#chunks.push(b);
      this.#len += b.length;
    }
    return true;
  }

  /** Take exactly n buffered bytes (call fill first). */
  take(n: number): Buffer {
    this.#len -= n;
    this.offset += n;
    const head = this.#chunks[0];
    if (head.length === n) return this.#chunks.shift()!;
    if (head.length > n) {
      this.#chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }

  /** Take up to n bytes from the head chunk (at least one buffered byte required). */
  takeSome(n: number): Buffer {
    const head = this.#chunks[0];
    return this.take(Math.min(n, head.length));
  }

  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      if (this.#len === 0 && !(await this.fill(1))) return false;
      n -= this.takeSome(n).length;
    }
    return true;
  }

  async return(): Promise<void> {
    await this.#it.return?.();
  }
}

interface EntryState {
  remaining: number;
  padding: number;
}

function truncated(src: Source): Error {
  return berthError('DataLoss', `tar: unexpected end of stream at offset ${src.offset}`);
}

function cstring(b: Buffer, start: number, len: number): string {
  let end = start;
  const max = start + len;
  while (end < max && b[end] !== 0) end++;
  return b.toString('utf8', start, end);
}

function number(b: Buffer, start: number, len: number, field: string, offset: number): number {
  if (b[start] & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as the marker.
    let v = 0n;
    for (let i = start; i < start + len; i++) v = (v << 8n) | BigInt(i === start ? b[i] & 0x7f : b[i]);
    if (b[start] & 0x40) v -= 1n << BigInt(len * 8 - 1);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < 0n) throw berthError('InvalidArgument', `tar: ${field} out of range in header at offset ${offset}`);
    return Number(v);
  }
  let i = start;
  const end = start + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw berthError('InvalidArgument', `tar: invalid ${field} in header at offset ${offset}`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : v;
}

/** Sum of a header's bytes with the checksum field counted as spaces, as the unsigned checksum is computed. */
function unsignedSum(b: Buffer): number {
  let sum = 0;
  if (b.byteOffset % 4 === 0) {
    // Four bytes a step, as two 16-bit lanes of byte pairs: 128 steps add at most 65,280 to a lane, so none overflows.
    const words = new Uint32Array(b.buffer, b.byteOffset, BLOCK / 4);
    let lanes = 0;
    for (let i = 0; i < BLOCK / 4; i++) {
      const w = words[i];
      lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
    }
    sum = (lanes & 0xffff) + Math.floor(lanes / 0x10000);
  } else {
    for (let i = 0; i < BLOCK; i++) sum += b[i];
  }
  for (let i = 148; i < 156; i++) sum -= b[i];
  return sum + 8 * 0x20;
}

function checksumOk(b: Buffer): boolean {
  const stored = number(b, 148, 8, 'checksum', 0);
  if (stored === unsignedSum(b)) return true;
  // Some old tars summed the bytes as signed chars.
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i];
    signed += c > 127 ? c - 256 : c;
  }
  return stored === signed;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parse pax records ("LEN key=value\n"); values stay bytes (xattr values are binary). */
export function parsePax(data: Buffer, offset = 0): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break;
    const sp = data.indexOf(0x20, i);
    const len = sp > i ? Number(data.toString('latin1', i, sp)) : NaN;
    if (!Number.isInteger(len) || len <= sp - i || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw berthError('InvalidArgument', `tar: malformed pax record in header at offset ${offset}`);
    }
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= i + len) throw berthError('InvalidArgument', `tar: malformed pax record in header at offset ${offset}`);
    out.set(data.toString('utf8', sp + 1, eq), data.subarray(eq + 1, i + len - 1));
    i += len;
  }
  return out;
}

function paxNumber(v: string, key: string, offset: number): number {
  const n = Number(v);
  if (v === '' || !Number.isFinite(n) || n < 0) throw berthError('InvalidArgument', `tar: invalid pax ${key} "${v}" at offset ${offset}`);
  return n;
}

function applyPax(h: TarHeader, records: Map<string, Buffer>, offset: number): void {
  for (const [key, raw] of records) {
    if (key.startsWith('SCHILY.xattr.')) {
      h.xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(raw));
      continue;
    }
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      h.xattrs.set(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(raw.toString('latin1'), 'base64'));
      continue;
    }
    const v = raw.toString('utf8');
    h.pax[key] = v;
    switch (key) {
      case 'path': h.path = v; break;
      case 'linkpath': h.linkpath = v; break;
      case 'size': h.size = paxNumber(v, key, offset); break;
      case 'uid': h.uid = paxNumber(v, key, offset); break;
      case 'gid': h.gid = paxNumber(v, key, offset); break;
      case 'uname': h.uname = v; break;
      case 'gname': h.gname = v; break;
      case 'mtime': h.mtime = paxNumber(v, key, offset); break;
      case 'atime': h.atime = paxNumber(v, key, offset); break;
      case 'GNU.sparse.major': case 'GNU.sparse.name': case 'GNU.sparse.size':
        throw berthError('InvalidArgument', `tar: sparse file at offset ${offset} is not supported`);
    }
  }
}

const typeOf: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};

/** Read a tar stream entry by entry. See the module comment for the contract. */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const src = new Source(source);
  let global = new Map<string, Buffer>();
  let local: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let current: EntryState | undefined;

  const readMeta = async (size: number, what: string, offset: number): Promise<Buffer> => {
    if (size > MAX_META) throw berthError('InvalidArgument', `tar: ${what} of ${size} bytes at offset ${offset} is too large`);
    const padded = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (!(await src.fill(padded))) throw truncated(src);
    return Buffer.from(src.take(padded).subarray(0, size));
  };

  try {
    for (;;) {
      if (current) {
        if (!(await src.skip(current.remaining + current.padding))) throw truncated(src);
        current = undefined;
      }
      const offset = src.offset;
      if (!(await src.fill(BLOCK))) {
        if (src.buffered === 0 && local === undefined && longName === undefined && longLink === undefined) return;
        throw truncated(src);
      }
      const b = src.take(BLOCK);
      if (isZero(b)) return;
      if (!checksumOk(b)) throw berthError('InvalidArgument', `tar: bad header checksum at offset ${offset}`);
      const flag = String.fromCharCode(b[156]);
      const size = number(b, 124, 12, 'size', offset);

      if (flag === 'x' || flag === 'g') {
        const records = parsePax(await readMeta(size, 'pax header', offset), offset);
        if (flag === 'g') global = new Map([...global, ...records]);
        else local = new Map([...(local ?? []), ...records]);
        continue;
      }
      if (flag === 'L' || flag === 'K') {
        const data = await readMeta(size, 'GNU long name', offset);
        const end = data.indexOf(0);
        const s = data.toString('utf8', 0, end < 0 ? data.length : end);
        if (flag === 'L') longName = s;
        else longLink = s;
        continue;
      }

      const magic = b.toString('latin1', 257, 263);
      const ustar = magic === 'ustar\0' || magic === 'ustar ';
      const gnu = magic === 'ustar ';
      let name = cstring(b, 0, 100);
      if (ustar && !gnu) {
        const prefix = cstring(b, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      let type = typeOf[flag];
      if (type === undefined) {
        throw berthError('InvalidArgument', `tar: entry "${name}" at offset ${offset} has unsupported type '${flag}'`);
      }
      if (flag === '\0' && name.endsWith('/')) type = 'directory';
      const h: TarHeader = {
        path: longName ?? name,
        type,
        mode: number(b, 100, 8, 'mode', offset) & 0o7777,
        uid: number(b, 108, 8, 'uid', offset),
        gid: number(b, 116, 8, 'gid', offset),
        uname: ustar ? cstring(b, 265, 32) : '',
        gname: ustar ? cstring(b, 297, 32) : '',
        size,
        mtime: number(b, 136, 12, 'mtime', offset),
        linkpath: longLink ?? cstring(b, 157, 100),
        devmajor: ustar ? number(b, 329, 8, 'devmajor', offset) : 0,
        devminor: ustar ? number(b, 337, 8, 'devminor', offset) : 0,
        xattrs: new Map(),
        pax: {},
      };
      if (global.size) applyPax(h, global, offset);
      if (local) applyPax(h, local, offset);
      local = undefined;
      longName = undefined;
      longLink = undefined;
      // Only regular files carry data; the others are header-only whatever their size field says (as Go's archive/tar).
      if (h.type !== 'file') h.size = 0;
      const dataSize = h.size;
      const state: EntryState = { remaining: dataSize, padding: (BLOCK - (dataSize % BLOCK)) % BLOCK };
      current = state;
      yield makeEntry(h, state, src);
    }
  } finally {
    await src.return();
  }
}

function makeEntry(h: TarHeader, state: EntryState, src: Source): TarEntry {
  async function* chunks(): AsyncGenerator<Buffer> {
    while (state.remaining > 0) {
      if (src.buffered === 0 && !(await src.fill(1))) throw truncated(src);
      const c = src.takeSome(state.remaining);
      state.remaining -= c.length;
      yield c;
    }
  }
  return Object.assign(h, {
    chunks,
    stream: () => Readable.from(chunks(), { objectMode: false }),
    async bytes(): Promise<Buffer> {
      const n = state.remaining;
      if (n === 0) return Buffer.alloc(0);
      if (!(await src.fill(n))) throw truncated(src);
      state.remaining = 0;
      return src.take(n);
    },
  });
}
