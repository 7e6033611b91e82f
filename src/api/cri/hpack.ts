/**
 * HPACK (RFC 7541), the part a filter in front of an HTTP/2 server needs:
 * a decoder that follows a client's dynamic table, Huffman strings
 * included, and an encoder that writes header fields as literals that
 * never touch the receiver's dynamic table. Pure: no I/O.
 *
 * Names and values are latin1 strings, so any octet survives a decode and
 * re-encode unchanged.
 *
 * Errors are `HpackError`s: the block is malformed (a bad index, a string
 * running past the block, bad Huffman padding, a table size update out of
 * place or above the limit). HTTP/2 makes any of them fatal to the
 * connection (RFC 7540, 4.3: COMPRESSION_ERROR).
 *
 * Example:
 *   const dec = new HpackDecoder();
 *   dec.decode(Buffer.from('828684418cf1e3c2e5f23a6ba0ab90f4ff', 'hex'));
 *   // [[':method','GET'], [':scheme','http'], [':path','/'], [':authority','www.example.com']]
 */

export interface HeaderField {
  name: string;
  value: string;
  /** Sent as "never indexed" (RFC 7541, 6.2.3): an intermediary must keep it so. */
  sensitive?: boolean;
}

export class HpackError extends Error {
  override name = 'HpackError';
}

/** RFC 7541, Appendix A. Index 1 is the first entry. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

const staticNameIndex = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => staticNameIndex.has(name) || staticNameIndex.set(name, i + 1));

/** RFC 7541, 4.1: an entry's size is its name and value octets plus 32. */
const ENTRY_OVERHEAD = 32;

/** Integers above this are refused: no field, index or size of a sane block comes near it. */
const MAX_INTEGER = 2 ** 28;

/** Decodes an integer with an N-bit prefix (RFC 7541, 5.1) at `pos`; answers it and the position after it. */
export function decodeInteger(buf: Uint8Array, pos: number, prefixBits: number): { value: number; next: number } {
  if (pos >= buf.length) throw new HpackError('integer past the end of the block');
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  pos++;
  if (value < max) return { value, next: pos };
  for (let shift = 0; ; shift += 7) {
    if (pos >= buf.length) throw new HpackError('integer past the end of the block');
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (value > MAX_INTEGER) throw new HpackError('integer too large');
    if ((b & 0x80) === 0) return { value, next: pos };
  }
}

/** Encodes an integer with an N-bit prefix, `flags` in the first octet's bits above the prefix. */
export function encodeInteger(value: number, prefixBits: number, flags = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return out;
}

/**
 * The bit length of each symbol's code in RFC 7541, Appendix B, for octets
 * 0 to 255 and then EOS (256). The code is canonical (codes of one length
 * are consecutive, in symbol order, and each length continues from the
 * last code of the shorter one), so the lengths define it.
 */
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;

/**
 * Canonical decoding tables: for each length, the first code of that
 * length, how many codes have it, and where its symbols start in
 * `bySymbolOrder`.
 */
const huffman = (() => {
  const maxLen = 30;
  const count = new Array<number>(maxLen + 1).fill(0);
  for (const l of HUFFMAN_LENGTHS) count[l]!++;
  const bySymbolOrder = HUFFMAN_LENGTHS.map((l, s) => [l, s] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, s]) => s);
  const first = new Array<number>(maxLen + 1).fill(0);
  const offset = new Array<number>(maxLen + 1).fill(0);
  const codes = new Array<number>(HUFFMAN_LENGTHS.length).fill(0);
  let code = 0;
  let at = 0;
  for (let len = 1; len <= maxLen; len++) {
    code = (code + count[len - 1]!) * 2;
    first[len] = code;
    offset[len] = at;
    for (let i = 0; i < count[len]!; i++) codes[bySymbolOrder[at + i]!] = code + i;
    at += count[len]!;
  }
  return { count, first, offset, bySymbolOrder, codes };
})();

/** Decodes a Huffman-coded string (RFC 7541, 5.2); padding must be under 8 bits of EOS's leading ones. */
export function huffmanDecode(buf: Uint8Array): Buffer {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of buf) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      if (len > 30) throw new HpackError('Huffman code longer than any symbol');
      const index = code - huffman.first[len]!;
      if (index >= 0 && index < huffman.count[len]!) {
        const sym = huffman.bySymbolOrder[huffman.offset[len]! + index]!;
        if (sym === EOS) throw new HpackError('EOS inside a Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      }
    }
  }
  if (len > 7) throw new HpackError('Huffman padding longer than 7 bits');
  if (code !== 2 ** len - 1) throw new HpackError('Huffman padding is not the start of EOS');
  return Buffer.from(out);
}

/** Huffman-codes octets (RFC 7541, 5.2), padding the last octet with ones. */
export function huffmanEncode(buf: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of buf) {
    let len = HUFFMAN_LENGTHS[byte]!;
    const code = huffman.codes[byte]!;
    while (len > 0) {
      const take = Math.min(len, 8 - bits);
      const chunk = Math.floor(code / 2 ** (len - take)) & ((1 << take) - 1);
      acc = (acc << take) | chunk;
      bits += take;
      len -= take;
      if (bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) | ((1 << (8 - bits)) - 1));
  return Buffer.from(out);
}

function decodeString(buf: Uint8Array, pos: number): { value: string; next: number } {
  if (pos >= buf.length) throw new HpackError('string past the end of the block');
  const huffmanCoded = (buf[pos]! & 0x80) !== 0;
  const { value: length, next } = decodeInteger(buf, pos, 7);
  if (next + length > buf.length) throw new HpackError('string past the end of the block');
  const raw = buf.subarray(next, next + length);
  const bytes = huffmanCoded ? huffmanDecode(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  return { value: bytes.toString('latin1'), next: next + length };
}

/**
 * Decodes a peer's header blocks in the order it sent them, keeping the
 * dynamic table it builds (RFC 7541, 2.3.2 and 4). `maxTableSize` is the
 * SETTINGS_HEADER_TABLE_SIZE the receiver announced: the peer may shrink
 * its table below it, never grow it above.
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is `table[0]`. */
  private table: [string, string][] = [];
  private size = 0;
  private tableLimit: number;
  private readonly maxTableSize: number;

  constructor(maxTableSize = 4096) {
    this.maxTableSize = maxTableSize;
    this.tableLimit = maxTableSize;
  }

  /** The dynamic table's size in RFC 7541's octets, and its entries, newest first (for tests). */
  get dynamicTable(): { size: number; entries: readonly (readonly [string, string])[] } {
    return { size: this.size, entries: this.table };
  }

  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    let pos = 0;
    let sizeUpdateAllowed = true;
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const { value: index, next } = decodeInteger(block, pos, 7);
        const [name, value] = this.entry(index);
        fields.push({ name, value });
        pos = next;
      } else if ((b & 0xe0) === 0x20) {
        if (!sizeUpdateAllowed) throw new HpackError('dynamic table size update after a header field');
        const { value: limit, next } = decodeInteger(block, pos, 5);
        if (limit > this.maxTableSize) throw new HpackError(`dynamic table size ${limit} above the limit ${this.maxTableSize}`);
        this.tableLimit = limit;
        this.evict(0);
        pos = next;
        continue;
      } else {
        const indexing = (b & 0xc0) === 0x40;
        const prefix = indexing ? 6 : 4;
        const { value: nameIndex, next } = decodeInteger(block, pos, prefix);
        pos = next;
        let name: string;
        if (nameIndex === 0) {
          const s = decodeString(block, pos);
          name = s.value;
          pos = s.next;
        } else {
          name = this.entry(nameIndex)[0];
        }
        const v = decodeString(block, pos);
        pos = v.next;
        const field: HeaderField = { name, value: v.value };
        if ((b & 0xf0) === 0x10) field.sensitive = true;
        if (indexing) this.add(name, v.value);
        fields.push(field);
      }
      sizeUpdateAllowed = false;
    }
    return fields;
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const e = this.table[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`index ${index} is not in the table`);
    return e;
  }

  private add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // An entry larger than the table empties it and is not added (RFC 7541, 4.4).
    this.evict(Math.min(entrySize, this.tableLimit + 1));
    if (entrySize > this.tableLimit) return;
    this.table.unshift([name, value]);
    this.size += entrySize;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.table.length > 0 && this.size + room > this.tableLimit) {
      const [name, value] = this.table.pop()!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

/**
 * A header block of literals that leave the receiver's dynamic table as it
 * is: "without indexing", or "never indexed" for a sensitive field, names
 * by static index where the static table has them, no Huffman coding.
 */
export function encodeLiteralBlock(fields: readonly HeaderField[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const flags = f.sensitive ? 0x10 : 0x00;
    const nameIndex = staticNameIndex.get(f.name) ?? 0;
    parts.push(Buffer.from(encodeInteger(nameIndex, 4, flags)));
    if (nameIndex === 0) pushString(parts, f.name);
    pushString(parts, f.value);
  }
  return Buffer.concat(parts);
}

function pushString(parts: Buffer[], s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  parts.push(Buffer.from(encodeInteger(bytes.length, 7, 0x00)), bytes);
}
