import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/**
 * WebSocket (RFC 6455) for the streaming server and its test clients: the
 * handshake's accept key, frame encoding and decoding, and a connection
 * that reassembles fragmented messages, answers pings and runs the closing
 * handshake.
 *
 * Rules enforced on what arrives (a violation closes with 1002): frames
 * from a client are masked and from a server are not; RSV bits are zero;
 * control frames are at most 125 bytes and never fragmented; continuation
 * frames follow a started message only. A message larger than
 * `maxMessage` closes with 1009, a text message that is not UTF-8 with
 * 1007.
 *
 * Example:
 *   const ws = new WebSocketConn(socket, { server: true });
 *   ws.on('message', (data, binary) => ws.send(data, binary));
 */
export const Opcode = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED: 1003,
  NO_STATUS: 1005,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A Sec-WebSocket-Key is 16 random bytes in base64 (24 characters). */
export function isValidKey(key: string | undefined): boolean {
  return !!key && /^[A-Za-z0-9+/]{22}==$/.test(key);
}

export interface WsFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export class WebSocketProtocolError extends Error {
  override name = 'WebSocketProtocolError';
  readonly code: number;
  constructor(message: string, code: number = CloseCode.PROTOCOL_ERROR) {
    super(message);
    this.code = code;
  }
}

/** One frame; `mask` (4 bytes) masks the payload, as a client must. */
export function encodeFrame(opcode: number, payload: Buffer, opts: { fin?: boolean; mask?: Buffer } = {}): Buffer {
  const fin = opts.fin ?? true;
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + (opts.mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (opts.mask ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127);
  if (extra === 2) head.writeUInt16BE(len, 2);
  else if (extra === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!opts.mask) return len ? Buffer.concat([head, payload]) : head;
  opts.mask.copy(head, 2 + extra);
  return Buffer.concat([head, applyMask(payload, opts.mask)]);
}

/** XOR with the 4-byte key, into a new buffer. */
export function applyMask(data: Buffer, mask: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ mask[i & 3];
  return out;
}

/**
 * Splits a byte stream into frames, unmasking payloads. `maxPayload`
 * bounds one frame (checked from its header, before the bytes arrive).
 */
export class WsFrameReader {
  #buf: Buffer = Buffer.alloc(0);
  readonly #max: number;

  constructor(maxPayload: number) {
    this.#max = maxPayload;
  }

  push(chunk: Buffer): WsFrame[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: WsFrame[] = [];
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) break;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(this.#max)) throw new WebSocketProtocolError(`frame of ${big} bytes is larger than ${this.#max}`, CloseCode.TOO_BIG);
        len = Number(big);
        at = 10;
      }
      if (len > this.#max) throw new WebSocketProtocolError(`frame of ${len} bytes is larger than ${this.#max}`, CloseCode.TOO_BIG);
      const need = at + (masked ? 4 : 0) + len;
      if (b.length < need) break;
      const raw = b.subarray(at + (masked ? 4 : 0), need);
      const payload = masked ? applyMask(raw, b.subarray(at, at + 4)) : Buffer.from(raw);
      out.push({ fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload });
      this.#buf = b.subarray(need);
    }
    if (this.#buf.length && this.#buf.byteOffset > 0 && this.#buf.buffer.byteLength > 4 * this.#buf.length) this.#buf = Buffer.from(this.#buf);
    return out;
  }
}

export interface WebSocketConnOptions {
  /** The server's side: frames that arrive must be masked, frames sent are not. */
  server: boolean;
  /** Largest message (after reassembly) accepted. */
  maxMessage?: number;
  /** Close (1001) when nothing arrives for this long; 0 never. */
  idleTimeoutMs?: number;
}

/**
 * A WebSocket connection over an upgraded socket. Events: 'message'
 * (data, isBinary), 'close' (code, reason) once the socket is gone,
 * 'protocolError' (err). `send` returns false when the socket's buffer is
 * full ('drain' follows).
 */
export class WebSocketConn extends EventEmitter {
  readonly #socket: Duplex;
  readonly #server: boolean;
  readonly #reader: WsFrameReader;
  readonly #max: number;
  #fragments: Buffer[] = [];
  #fragmentSize = 0;
  #fragmentOpcode = -1;
  #closeSent = false;
  #closeCode: number = CloseCode.NO_STATUS;
  #closeReason = '';
  #closed = false;

  constructor(socket: Duplex, opts: WebSocketConnOptions) {
    super();
    this.#socket = socket;
    this.#server = opts.server;
    this.#max = opts.maxMessage ?? 16 * 1024 * 1024;
    this.#reader = new WsFrameReader(this.#max);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.end());
    socket.once('close', () => {
      this.#closed = true;
      this.emit('close', this.#closeCode, this.#closeReason);
    });
    if (opts.idleTimeoutMs && 'setTimeout' in socket) {
      (socket as unknown as { setTimeout(ms: number, cb: () => void): void }).setTimeout(opts.idleTimeoutMs, () => this.close(CloseCode.GOING_AWAY, 'idle timeout'));
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a close frame went out: nothing more may be sent. */
  get closing(): boolean {
    return this.#closeSent;
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  send(data: Buffer | string, binary = typeof data !== 'string'): boolean {
    if (this.#closeSent || this.#closed) return true;
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    return this.#socket.write(this.#frame(binary ? Opcode.BINARY : Opcode.TEXT, payload));
  }

  ping(data: Buffer = Buffer.alloc(0)): void {
    if (!this.#closeSent && !this.#closed) this.#socket.write(this.#frame(Opcode.PING, data));
  }

  /**
   * Start the closing handshake: a close frame, then the socket ends once
   * the peer answers (or after a grace period, for a peer that does not).
   */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    if (this.#closed) return;
    if (!this.#closeSent) {
      this.#closeSent = true;
      const body = Buffer.alloc(2 + Buffer.byteLength(reason));
      body.writeUInt16BE(code, 0);
      body.write(reason, 2);
      this.#socket.write(this.#frame(Opcode.CLOSE, body.subarray(0, 125)));
      if (this.#server) setTimeout(() => this.#socket.destroy(), 5000).unref();
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #frame(opcode: number, payload: Buffer): Buffer {
    return encodeFrame(opcode, payload, { mask: this.#server ? undefined : randomBytes(4) });
  }

  #onData(chunk: Buffer): void {
    let frames: WsFrame[];
    try {
      frames = this.#reader.push(chunk);
      for (const f of frames) {
        if (this.#closed) return;
        this.#onFrame(f);
      }
    } catch (err) {
      const e = err as WebSocketProtocolError;
      this.emit('protocolError', e);
      this.#closeCode = e.code ?? CloseCode.PROTOCOL_ERROR;
      this.close(this.#closeCode, e.message.slice(0, 100));
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 1000).unref();
      this.#socket.pause();
    }
  }

  #onFrame(f: WsFrame): void {
    if (f.rsv) throw new WebSocketProtocolError('reserved bits set without an extension');
    if (this.#server && !f.masked) throw new WebSocketProtocolError('a client frame that is not masked');
    if (!this.#server && f.masked) throw new WebSocketProtocolError('a server frame that is masked');
    if (f.opcode >= 8) {
      if (!f.fin) throw new WebSocketProtocolError('a fragmented control frame');
      if (f.payload.length > 125) throw new WebSocketProtocolError('a control frame larger than 125 bytes');
      return this.#onControl(f);
    }
    if (f.opcode === Opcode.CONTINUATION) {
      if (this.#fragmentOpcode < 0) throw new WebSocketProtocolError('a continuation frame without a message');
    } else if (f.opcode === Opcode.TEXT || f.opcode === Opcode.BINARY) {
      if (this.#fragmentOpcode >= 0) throw new WebSocketProtocolError('a new message inside a fragmented one');
      this.#fragmentOpcode = f.opcode;
    } else {
      throw new WebSocketProtocolError(`unknown opcode ${f.opcode}`);
    }
    this.#fragmentSize += f.payload.length;
    if (this.#fragmentSize > this.#max) throw new WebSocketProtocolError(`message larger than ${this.#max} bytes`, CloseCode.TOO_BIG);
    this.#fragments.push(f.payload);
    if (!f.fin) return;
    const data = this.#fragments.length === 1 ? this.#fragments[0] : Buffer.concat(this.#fragments);
    const binary = this.#fragmentOpcode === Opcode.BINARY;
    this.#fragments = [];
    this.#fragmentSize = 0;
    this.#fragmentOpcode = -1;
    if (!binary && !isUtf8(data)) throw new WebSocketProtocolError('a text message that is not UTF-8', CloseCode.INVALID_DATA);
    if (!this.#closeSent) this.emit('message', data, binary);
  }

  #onControl(f: WsFrame): void {
    switch (f.opcode) {
      case Opcode.PING:
        if (!this.#closeSent) this.#socket.write(this.#frame(Opcode.PONG, f.payload));
        return;
      case Opcode.PONG:
        this.emit('pong', f.payload);
        return;
      case Opcode.CLOSE: {
        if (f.payload.length === 1) throw new WebSocketProtocolError('a close frame of one byte');
        this.#closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : CloseCode.NO_STATUS;
        this.#closeReason = f.payload.subarray(2).toString();
        // Echo the code, then end: the server closes the TCP connection first (RFC 6455 7.1.1).
        if (!this.#closeSent) {
          this.#closeSent = true;
          const echo = f.payload.length >= 2 ? f.payload.subarray(0, 2) : Buffer.alloc(0);
          this.#socket.write(this.#frame(Opcode.CLOSE, echo));
        }
        this.#socket.end();
        if (this.#server) setTimeout(() => this.#socket.destroy(), 1000).unref();
        return;
      }
      default:
        throw new WebSocketProtocolError(`unknown control opcode ${f.opcode}`);
    }
  }
}
