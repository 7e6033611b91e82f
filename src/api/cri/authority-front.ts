import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { encodeLiteralBlock, HpackDecoder, type HeaderField } from './hpack.ts';

/**
 * An HTTP/2 front for the CRI socket that lets clients dialing a bare
 * socket path in. grpc-go clients that dial the bare socket
 * path (crictl and critest 1.26, whatever URL they are given; kubelet up
 * to about 1.29) send that path as `:authority`. nghttp2, under Node's http2 and so
 * under grpc-js, checks `:authority` against RFC 3986's authority
 * characters, and resets the stream with PROTOCOL_ERROR on the `/` before
 * the server sees a request. Node offers no option to turn that check off
 * (nghttp2's no_http_messaging is not exposed), so the front rewrites such
 * an `:authority` to `localhost` (what newer grpc-go sends for unix
 * targets) in the client's header blocks. containerd and CRI-O ignore the
 * authority; so does berth.
 *
 * A connection whose first request carries a valid `:authority` (newer
 * kubelets, grpc-js) is handed to the server as the socket itself, with no cost after that first request; see
 * `acceptConnection`. Only the other connections are filtered.
 *
 * On a filtered connection, only the client's HEADERS and CONTINUATION
 * frames are looked at; every other frame, and everything the server
 * sends, passes through as the same bytes. Every header block is
 * HPACK-decoded with a table that follows the client's, so that a later
 * block's indexes stay meaningful. While no block needed a change, blocks
 * pass through as sent and the server's table mirrors the client's; from
 * the first rewritten block on, every block is re-encoded as literals that
 * leave the server's table alone, since it no longer matches the
 * client's.
 *
 * A client whose frames or header blocks are malformed is disconnected;
 * nothing is thrown. A stream that does not start with the HTTP/2 client
 * preface passes through untouched, for the server to refuse.
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const SETTINGS = 0x4;
const PING = 0x6;
const ACK = 0x1;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** The smallest SETTINGS_MAX_FRAME_SIZE a server may announce (RFC 7540, 6.5.2), so every server takes it. */
const MAX_FRAME = 16_384;
/** A header block larger than this (after its frames are joined) ends the connection. */
const MAX_BLOCK = 1 << 20;

/**
 * What nghttp2 accepts in `:authority` (checked against Node's own http2
 * server, character by character): RFC 3986's unreserved and sub-delims,
 * ':', '[', ']' and '%'; not '@' (HTTP/2 has no userinfo), '/' or anything
 * else.
 */
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]%]*$/;

/** Whether nghttp2 would accept this `:authority`. */
export function isValidAuthority(value: string): boolean {
  return VALID_AUTHORITY.test(value);
}

export class FrameError extends Error {
  override name = 'FrameError';
}

/**
 * The client-to-server half of the front: takes the client's bytes as
 * they arrive, answers the bytes to hand on. Frame boundaries may fall
 * anywhere in the chunks; the payload of a frame that is not part of a
 * header block is handed on as slices of the chunks, never buffered.
 */
export class AuthorityRewriter {
  private mode: 'preface' | 'frames' | 'raw' = 'preface';
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Payload bytes of a passed-through frame still to come. */
  private passing = 0;
  /** The bytes `held` must reach: a frame header, or a header frame whole. */
  private need = FRAME_HEADER;
  /** The frames (header and payload) of the header block being collected. */
  private block: Buffer[] = [];
  private blockBytes = 0;
  private blockStream = 0;
  private readonly decoder = new HpackDecoder();
  private reencoding = false;
  private readonly authority: string;
  /** Header blocks whose `:authority` was rewritten (for tests and logs). */
  rewritten = 0;

  constructor(authority = 'localhost') {
    this.authority = authority;
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.mode === 'raw') {
        out.push(pos === 0 ? chunk : chunk.subarray(pos));
        break;
      }
      if (this.mode === 'preface') {
        pos = this.hold(chunk, pos, PREFACE.length);
        const start = this.heldHead();
        if (!start.equals(PREFACE.subarray(0, start.length))) this.mode = 'raw';
        else if (this.heldBytes < PREFACE.length) break;
        else this.mode = 'frames';
        out.push(this.takeHeld());
        continue;
      }
      if (this.passing > 0) {
        const n = Math.min(this.passing, chunk.length - pos);
        out.push(chunk.subarray(pos, pos + n));
        this.passing -= n;
        pos += n;
        continue;
      }
      // A frame header, then, for a header block, its whole payload: both may span chunks, and are joined once.
      pos = this.hold(chunk, pos, this.need);
      if (this.heldBytes < this.need) break;
      if (this.need === FRAME_HEADER) {
        const head = this.takeHeld();
        const type = head[3]!;
        const length = head.readUIntBE(0, 3);
        if (type === HEADERS || type === CONTINUATION) {
          if (length + this.blockBytes > MAX_BLOCK) throw new FrameError(`header block over ${MAX_BLOCK} bytes`);
          if (length > 0) {
            this.held.push(head);
            this.heldBytes = head.length;
            this.need = FRAME_HEADER + length;
            continue;
          }
          // An empty CONTINUATION can end a block: on with the header alone.
          this.onHeaderFrame(head, out);
          continue;
        }
        if (this.block.length > 0) throw new FrameError(`frame of type ${type} inside a header block`);
        out.push(head);
        this.passing = length;
        continue;
      }
      this.need = FRAME_HEADER;
      this.onHeaderFrame(this.takeHeld(), out);
    }
    return out;
  }

  private onHeaderFrame(frame: Buffer, out: Buffer[]): void {
    const type = frame[3]!;
    const flags = frame[4]!;
    const stream = frame.readUInt32BE(5) & 0x7fffffff;
    if (type === HEADERS) {
      if (this.block.length > 0) throw new FrameError('HEADERS inside a header block');
      this.blockStream = stream;
    } else if (this.block.length === 0 || stream !== this.blockStream) {
      throw new FrameError('CONTINUATION without the HEADERS it continues');
    }
    this.block.push(frame);
    this.blockBytes += frame.length;
    if (this.blockBytes > MAX_BLOCK) throw new FrameError(`header block over ${MAX_BLOCK} bytes`);
    if (flags & END_HEADERS) this.onHeaderBlock(out);
  }

  private onHeaderBlock(out: Buffer[]): void {
    const frames = this.block;
    this.block = [];
    this.blockBytes = 0;
    const first = frames[0]!;
    const flags = first[4]!;
    const { fragment: payload, priority } = headersFragment(first.subarray(FRAME_HEADER), flags);
    const fragments = [payload, ...frames.slice(1).map((f) => f.subarray(FRAME_HEADER))];
    let fields: HeaderField[];
    try {
      fields = this.decoder.decode(fragments.length === 1 ? payload : Buffer.concat(fragments));
    } catch (err) {
      throw new FrameError(`header block: ${(err as Error).message}`);
    }
    let changed = false;
    for (const f of fields) {
      if (f.name === ':authority' && !isValidAuthority(f.value)) {
        f.value = this.authority;
        changed = true;
      }
    }
    if (changed) this.rewritten++;
    if (!changed && !this.reencoding) {
      out.push(...frames);
      return;
    }
    this.reencoding = true;
    out.push(...headerFrames(this.blockStream, flags & (END_STREAM | PRIORITY), priority, encodeLiteralBlock(fields)));
  }

  private hold(chunk: Buffer, pos: number, upTo: number): number {
    const n = Math.min(upTo - this.heldBytes, chunk.length - pos);
    if (n > 0) {
      this.held.push(chunk.subarray(pos, pos + n));
      this.heldBytes += n;
    }
    return pos + n;
  }

  private heldHead(): Buffer {
    if (this.held.length > 1) this.held = [Buffer.concat(this.held)];
    return this.held[0]!;
  }

  private takeHeld(): Buffer {
    const b = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
    this.held = [];
    this.heldBytes = 0;
    return b;
  }
}

/** A header block as a HEADERS frame and as many CONTINUATION frames as it takes. */
function headerFrames(stream: number, flags: number, priority: Buffer | undefined, block: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let pos = 0;
  do {
    const firstFrame = pos === 0;
    const lead = firstFrame && priority ? priority : undefined;
    const room = MAX_FRAME - (lead?.length ?? 0);
    const piece = block.subarray(pos, pos + room);
    pos += piece.length;
    const head = Buffer.alloc(FRAME_HEADER);
    head.writeUIntBE(piece.length + (lead?.length ?? 0), 0, 3);
    head[3] = firstFrame ? HEADERS : CONTINUATION;
    head[4] = (firstFrame ? flags : 0) | (pos >= block.length ? END_HEADERS : 0);
    head.writeUInt32BE(stream, 5);
    frames.push(lead ? Buffer.concat([head, lead, piece]) : Buffer.concat([head, piece]));
  } while (pos < block.length);
  return frames;
}

/**
 * Wraps a client's connection: the server reads the client's bytes through
 * an AuthorityRewriter and writes to the client directly. Backpressure
 * holds both ways. A malformed stream from the client ends the connection
 * (reported once to `onError`, never thrown); either side closing closes
 * the other.
 */
export function authorityFront(socket: Duplex, opts: { authority?: string; onError?(err: Error): void; initial?: Buffer } = {}): Duplex {
  const rewriter = new AuthorityRewriter(opts.authority);
  const front = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (socket.destroyed) return cb(new Error('client connection closed'));
      if (socket.write(chunk)) cb();
      else socket.once('drain', () => cb());
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  const onData = (chunk: Buffer) => {
    let out: Buffer[];
    try {
      out = rewriter.push(chunk);
    } catch (err) {
      opts.onError?.(err as Error);
      socket.destroy();
      front.destroy();
      return;
    }
    let more = true;
    for (const b of out) more = front.push(b);
    if (!more) socket.pause();
  };
  if (opts.initial?.length) onData(opts.initial);
  socket.on('data', onData);
  socket.on('end', () => front.push(null));
  // The server's session sees the close as the end of its connection; the client's error is not its to handle.
  socket.on('error', () => front.destroy());
  socket.on('close', () => front.destroy());
  return front;
}

/** An empty SETTINGS frame: "all defaults", the server's half of the connection preface. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);

/** What a client may send before its first request is complete; more ends the connection. */
const MAX_GREETING = MAX_BLOCK + 64 * 1024;

/**
 * Serves one client connection: decides, from the client's first request,
 * whether the server gets the socket itself (`native`) or the socket
 * behind an authorityFront (`rewrite`), and hands it to `inject` (grpc-js's
 * connection injector).
 *
 * grpc-go clients send their first request only after the server's
 * SETTINGS, and the server's session, once made, cannot be moved to
 * another socket. So the front sends an empty SETTINGS itself (legal: it
 * changes nothing, and the server's own SETTINGS follows as a second one),
 * holds the client's bytes until the first header block and the client's
 * ACK of that SETTINGS are in, removes the ACK (the server never sent that
 * SETTINGS), and gives the server the rest. Bytes that are not HTTP/2 go
 * to the server as they are, for it to refuse. A malformed greeting ends
 * the connection, reported once to `onError`.
 */
export function acceptConnection(
  socket: Socket,
  inject: (connection: Duplex) => void,
  opts: { authority?: string; onError?(err: Error): void; onRoute?(route: 'native' | 'rewrite'): void } = {},
): void {
  const scanner = new GreetingScanner();
  const fail = (err: Error) => {
    opts.onError?.(err);
    socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    let verdict: Greeting | undefined;
    try {
      verdict = scanner.push(chunk);
    } catch (err) {
      return fail(err as Error);
    }
    for (const reply of scanner.replies.splice(0)) socket.write(reply);
    if (!verdict) return;
    socket.off('data', onData);
    socket.off('error', onEarlyError);
    socket.pause();
    opts.onRoute?.(verdict.native ? 'native' : 'rewrite');
    try {
      if (verdict.native) {
        // The server's session reads what the socket already holds before its own reads (node's http2 core).
        if (verdict.bytes.length > 0) socket.unshift(verdict.bytes);
        inject(socket);
      } else {
        inject(authorityFront(socket, { authority: opts.authority, onError: opts.onError, initial: verdict.bytes }));
        socket.resume();
      }
    } catch (err) {
      // A server shutting down may refuse the connection: the client is let go, berthd carries on.
      fail(err as Error);
    }
  };
  // A client that goes away before its first request leaves nothing to clean up but the socket.
  const onEarlyError = () => socket.destroy();
  socket.on('error', onEarlyError);
  socket.on('data', onData);
  socket.write(EMPTY_SETTINGS);
}

interface Greeting {
  native: boolean;
  /** The client's bytes so far, without its ACK of the front's SETTINGS and the PINGs the front answered. */
  bytes: Buffer;
}

/**
 * Reads a client's greeting as it arrives: `push` answers undefined until
 * the first header block and the ACK of the front's SETTINGS are both in.
 * Each frame is looked at once, when it is whole; the bytes are kept in
 * one buffer that doubles as it fills. A client may wait long before its
 * first request (grpc-go connects ahead of it): its PINGs meanwhile are
 * answered by the front (`replies`) and not passed on, so that keepalive
 * holds and the server never answers one twice.
 */
export class GreetingScanner {
  private buf = Buffer.alloc(512);
  private length = 0;
  /** Where the first frame not yet looked at starts. */
  private pos = 0;
  private acked = false;
  /** PING ACKs to send the client; the caller takes them after each push. */
  replies: Buffer[] = [];
  private fragments: Buffer[] | undefined;
  private authorityValid: boolean | undefined;

  push(chunk: Buffer): Greeting | undefined {
    if (this.length + chunk.length > MAX_GREETING) throw new FrameError(`no complete request in the first ${MAX_GREETING} bytes`);
    if (this.length + chunk.length > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + chunk.length));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    chunk.copy(this.buf, this.length);
    this.length += chunk.length;
    let buf = this.buf.subarray(0, this.length);
    if (this.pos === 0) {
      const n = Math.min(buf.length, PREFACE.length);
      if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) return { native: true, bytes: Buffer.from(buf) };
      if (buf.length < PREFACE.length) return undefined;
      this.pos = PREFACE.length;
    }
    while (this.pos + FRAME_HEADER <= buf.length) {
      const length = buf.readUIntBE(this.pos, 3);
      const end = this.pos + FRAME_HEADER + length;
      if (end > buf.length) break;
      if (this.keep(buf[this.pos + 3]!, buf[this.pos + 4]!, buf.subarray(this.pos + FRAME_HEADER, end))) {
        this.pos = end;
      } else {
        // Not passed on: cut out in place, so that a long wait full of PINGs holds no more bytes.
        buf.copyWithin(this.pos, end);
        this.length -= end - this.pos;
        buf = this.buf.subarray(0, this.length);
      }
      if (this.acked && this.authorityValid !== undefined) return { native: this.authorityValid, bytes: Buffer.from(buf) };
    }
    return undefined;
  }

  /** Looks at one whole frame; false: the front took care of it and it is not passed on. */
  private keep(type: number, flags: number, payload: Buffer): boolean {
    if (type === SETTINGS && flags & ACK && payload.length === 0 && !this.acked) {
      this.acked = true;
      return false;
    }
    if (type === PING && !(flags & ACK) && payload.length === 8) {
      const reply = Buffer.alloc(FRAME_HEADER + 8);
      reply.writeUIntBE(8, 0, 3);
      reply[3] = PING;
      reply[4] = ACK;
      payload.copy(reply, FRAME_HEADER);
      this.replies.push(reply);
      return false;
    }
    if (this.authorityValid !== undefined) return true;
    if (type === HEADERS) this.fragments = [Buffer.from(headersFragment(payload, flags).fragment)];
    else if (type === CONTINUATION && this.fragments) this.fragments.push(Buffer.from(payload));
    else return true;
    if (!(flags & END_HEADERS)) return true;
    let fields: HeaderField[];
    try {
      fields = new HpackDecoder().decode(Buffer.concat(this.fragments));
    } catch (err) {
      throw new FrameError(`header block: ${(err as Error).message}`);
    }
    this.authorityValid = fields.every((f) => f.name !== ':authority' || isValidAuthority(f.value));
    return true;
  }
}

/** Reads a whole greeting at once (for tests): GreetingScanner's answer to these bytes. */
export function scanGreeting(buf: Buffer): Greeting | undefined {
  return new GreetingScanner().push(buf);
}

/** The header block fragment of a HEADERS frame's payload, and its priority fields if it has them. */
function headersFragment(payload: Buffer, flags: number): { fragment: Buffer; priority?: Buffer } {
  if (flags & PADDED) {
    if (payload.length < 1 || payload[0]! >= payload.length) throw new FrameError('HEADERS padding longer than its payload');
    payload = payload.subarray(1, payload.length - payload[0]!);
  }
  if (!(flags & PRIORITY)) return { fragment: payload };
  if (payload.length < 5) throw new FrameError('HEADERS too short for its priority');
  return { fragment: payload.subarray(5), priority: payload.subarray(0, 5) };
}
