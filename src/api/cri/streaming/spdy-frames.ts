import type { Inflate } from 'node:zlib';
import { zlibModule } from '../../../core/builtins.ts';

/**
 * SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 as amended for 3.1), the
 * transport kubelet's streaming server and its clients (moby/spdystream)
 * speak after an `Upgrade: SPDY/3.1`. Pure encoding and decoding; the
 * session (streams, replies, shutdown) is spdy-session.ts.
 *
 * A frame is 8 bytes of header and a payload:
 *   control: 1 | version(15) | type(16) | flags(8) | length(24)
 *   data:    0 | stream id(31)           | flags(8) | length(24)
 * Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are a count, then
 * length-prefixed names and values (values joined by NUL), compressed with
 * one zlib stream per direction primed with the draft's dictionary.
 */
export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const MAX_FRAME_PAYLOAD = 0xffffff;

/** A header block as SPDY carries it: lower-case names, each with one or more values. */
export type SpdyHeaders = Record<string, string[]>;

export type SpdyFrame =
  | { kind: 'data'; streamId: number; flags: number; data: Buffer }
  | { kind: 'control'; version: number; type: number; flags: number; payload: Buffer };

/** A violation of the framing that ends the session (GOAWAY with PROTOCOL_ERROR). */
export class SpdyProtocolError extends Error {
  override name = 'SpdyProtocolError';
}

/**
 * Splits a byte stream into frames. `maxControl` bounds a control frame's
 * payload (header blocks are small; a peer announcing megabytes is hostile);
 * data frames may use the whole 24-bit length.
 */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);
  readonly #maxControl: number;

  constructor(opts: { maxControlPayload?: number } = {}) {
    this.#maxControl = opts.maxControlPayload ?? 256 * 1024;
  }

  push(chunk: Buffer): SpdyFrame[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: SpdyFrame[] = [];
    while (this.#buf.length >= 8) {
      const word = this.#buf.readUInt32BE(0);
      const flags = this.#buf[4];
      const length = this.#buf.readUIntBE(5, 3);
      const control = (word & 0x80000000) !== 0;
      if (control && length > this.#maxControl) throw new SpdyProtocolError(`control frame of ${length} bytes is larger than ${this.#maxControl}`);
      if (this.#buf.length < 8 + length) break;
      const payload = this.#buf.subarray(8, 8 + length);
      this.#buf = this.#buf.subarray(8 + length);
      if (control) out.push({ kind: 'control', version: (word >>> 16) & 0x7fff, type: word & 0xffff, flags, payload });
      else out.push({ kind: 'data', streamId: word & 0x7fffffff, flags, data: payload });
    }
    // A frame split across reads keeps only its own bytes, not the chunk it came in.
    if (this.#buf.length && this.#buf.byteOffset > 0 && this.#buf.buffer.byteLength > 4 * this.#buf.length) this.#buf = Buffer.from(this.#buf);
    return out;
  }

  /** Bytes of a frame not yet complete. */
  get pending(): number {
    return this.#buf.length;
  }
}

export function encodeControl(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError(`SPDY control frame payload of ${payload.length} bytes`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, 0);
  head[4] = flags;
  head.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([head, payload]);
}

export function encodeData(streamId: number, flags: number, data: Buffer): Buffer {
  if (data.length > MAX_FRAME_PAYLOAD) throw new RangeError(`SPDY data frame of ${data.length} bytes`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head[4] = flags;
  head.writeUIntBE(data.length, 5, 3);
  return data.length ? Buffer.concat([head, data]) : head;
}

/** SYN_STREAM payload: stream id, associated stream id, priority (3 bits), slot, compressed header block. */
export function encodeSynStream(streamId: number, priority: number, block: Buffer, associated = 0): Buffer {
  const p = Buffer.alloc(10);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  p.writeUInt32BE(associated & 0x7fffffff, 4);
  p[8] = (priority & 7) << 5;
  return Buffer.concat([p, block]);
}

export function parseSynStream(payload: Buffer): { streamId: number; associated: number; priority: number; block: Buffer } {
  if (payload.length < 10) throw new SpdyProtocolError('SYN_STREAM frame too short');
  return { streamId: payload.readUInt32BE(0) & 0x7fffffff, associated: payload.readUInt32BE(4) & 0x7fffffff, priority: payload[8] >> 5, block: payload.subarray(10) };
}

/** SYN_REPLY and HEADERS payload: stream id, compressed header block. */
export function encodeStreamHeaders(streamId: number, block: Buffer): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  return Buffer.concat([p, block]);
}

export function parseStreamHeaders(payload: Buffer): { streamId: number; block: Buffer } {
  if (payload.length < 4) throw new SpdyProtocolError('SYN_REPLY/HEADERS frame too short');
  return { streamId: payload.readUInt32BE(0) & 0x7fffffff, block: payload.subarray(4) };
}

/** Payloads of two 32-bit words: RST_STREAM (stream, status), GOAWAY (last good stream, status), WINDOW_UPDATE (stream, delta). */
export function encodeTwoWords(a: number, b: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(a >>> 0, 0);
  p.writeUInt32BE(b >>> 0, 4);
  return p;
}

export function parseTwoWords(payload: Buffer, what: string): [number, number] {
  if (payload.length !== 8) throw new SpdyProtocolError(`${what} frame of ${payload.length} bytes, not 8`);
  return [payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4)];
}

export function encodePing(id: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(id >>> 0, 0);
  return encodeControl(FrameType.PING, 0, p);
}

/** The uncompressed name/value block. Names must be lower case (the draft's rule). */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  const names = Object.keys(headers);
  count.writeUInt32BE(names.length, 0);
  parts.push(count);
  for (const name of names) {
    const n = Buffer.from(name.toLowerCase());
    const v = Buffer.from(headers[name].join('\0'));
    const nl = Buffer.alloc(4);
    nl.writeUInt32BE(n.length, 0);
    const vl = Buffer.alloc(4);
    vl.writeUInt32BE(v.length, 0);
    parts.push(nl, n, vl, v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const out: SpdyHeaders = Object.create(null);
  let at = 0;
  const word = () => {
    if (at + 4 > block.length) throw new SpdyProtocolError('header block truncated');
    const v = block.readUInt32BE(at);
    at += 4;
    return v;
  };
  const bytes = (n: number) => {
    if (at + n > block.length) throw new SpdyProtocolError('header block truncated');
    const s = block.toString('utf8', at, at + n);
    at += n;
    return s;
  };
  const count = word();
  // Each pair takes at least 8 bytes: a count beyond that is a lie, not a reason to loop.
  if (count > (block.length - 4) / 8) throw new SpdyProtocolError(`header block claims ${count} headers in ${block.length} bytes`);
  for (let i = 0; i < count; i++) {
    const name = bytes(word());
    const value = bytes(word());
    if (!name) throw new SpdyProtocolError('empty header name');
    if (name !== name.toLowerCase()) throw new SpdyProtocolError(`header name "${name}" is not lower case`);
    if (name in out) throw new SpdyProtocolError(`header "${name}" appears twice`);
    out[name] = value.split('\0');
  }
  if (at !== block.length) throw new SpdyProtocolError('bytes after the header block');
  return out;
}

/** The first value of a header, by case-insensitive name. */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  return headers[name.toLowerCase()]?.[0];
}

/**
 * The zlib dictionary of SPDY/3 header compression, from the draft: these
 * names, each preceded by its 32-bit length, then the trailing text.
 */
const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
  'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
  '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
  'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const HEADER_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.map((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length, 0);
    return Buffer.concat([len, Buffer.from(w, 'latin1')]);
  }),
  Buffer.from(DICTIONARY_TAIL, 'latin1'),
]);

/** Adler-32 (RFC 1950), for the dictionary id of the zlib header. */
export function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * The sending side of header compression: one zlib stream for the
 * session's life, each block a run of stored (uncompressed) deflate blocks
 * and the empty stored block of a sync flush. Any inflater primed with
 * the dictionary reads it; compressing the few bytes of header we send is
 * not worth an asynchronous zlib round trip, which would also let later
 * frames overtake the one it belongs to.
 */
const SYNC_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

export class HeaderDeflater {
  #started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      // CMF 0x78 (deflate, 32 KiB window), FLG 0xbb (a preset dictionary follows; the pair is a multiple of 31).
      const dictId = Buffer.alloc(4);
      dictId.writeUInt32BE(adler32(HEADER_DICTIONARY), 0);
      parts.push(Buffer.from([0x78, 0xbb]), dictId);
    }
    for (let at = 0; at < block.length; at += 0xffff) {
      const piece = block.subarray(at, at + 0xffff);
      const head = Buffer.alloc(5);
      head[0] = 0; // BFINAL 0, BTYPE 00 (stored), padded to the byte
      head.writeUInt16LE(piece.length, 1);
      head.writeUInt16LE(~piece.length & 0xffff, 3);
      parts.push(head, piece);
    }
    // The empty stored block a sync flush ends with: Go's inflater hands out what it decoded only on
    // reaching it, and otherwise reads on past the frame for the next block, failing the frame
    // ("compressed payload size was incorrect" in spdystream).
    parts.push(SYNC_MARKER);
    return Buffer.concat(parts);
  }
}

/**
 * The receiving side: one inflater for the session's life (the peer's
 * blocks refer back to earlier ones), primed with the dictionary. Calls
 * must not overlap: the session inflates one frame at a time. An inflated
 * block above `maxBytes` is refused (a compression bomb).
 */
export class HeaderInflater {
  readonly #z: Inflate;
  #out: Buffer[] = [];
  #size = 0;
  #error: Error | undefined;
  #pending: ((err?: Error) => void) | undefined;
  readonly #max: number;

  constructor(opts: { maxBytes?: number } = {}) {
    this.#max = opts.maxBytes ?? 256 * 1024;
    this.#z = zlibModule().createInflate({ dictionary: HEADER_DICTIONARY });
    this.#z.on('data', (d: Buffer) => {
      this.#size += d.length;
      if (this.#size > this.#max) this.#fail(new SpdyProtocolError(`header block inflates past ${this.#max} bytes`));
      else this.#out.push(d);
    });
    this.#z.on('error', (err: Error) => this.#fail(new SpdyProtocolError(`header block: ${err.message}`)));
  }

  #fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    this.#z.destroy();
    const p = this.#pending;
    this.#pending = undefined;
    p?.(err);
  }

  inflate(block: Buffer): Promise<Buffer> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#pending = (err) => (err ? reject(err) : undefined);
      this.#z.write(block);
      this.#z.flush(zlibModule().constants.Z_SYNC_FLUSH, () => {
        if (this.#error) return;
        this.#pending = undefined;
        const out = Buffer.concat(this.#out);
        this.#out = [];
        this.#size = 0;
        resolve(out);
      });
    });
  }

  close(): void {
    this.#z.destroy();
  }
}
