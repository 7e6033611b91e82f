import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import {
  decodeHeaderBlock,
  encodeControl,
  encodeData,
  encodeHeaderBlock,
  encodePing,
  encodeStreamHeaders,
  encodeSynStream,
  encodeTwoWords,
  FLAG_FIN,
  FrameReader,
  FrameType,
  GoAwayStatus,
  HeaderDeflater,
  HeaderInflater,
  MAX_FRAME_PAYLOAD,
  parseStreamHeaders,
  parseSynStream,
  parseTwoWords,
  RstStatus,
  SPDY_VERSION,
  SpdyProtocolError,
  type SpdyFrame,
  type SpdyHeaders,
} from './spdy-frames.ts';

/**
 * A SPDY/3.1 session over any byte stream (an upgraded HTTP connection, or
 * the binary messages of a WebSocket): the streams either side opens, as
 * Node duplexes. It behaves as moby/spdystream, the implementation kubelet
 * and its clients use:
 * - the side that opens a stream sends SYN_STREAM with its headers (odd ids
 *   from the client, even from the server); the other answers SYN_REPLY, or
 *   RST_STREAM REFUSED_STREAM when `accept` names a reason;
 * - `stream.end()` sends an empty DATA frame with FIN (a half-close, which
 *   the peer reads as end of file); `stream.reset()` sends RST_STREAM; a
 *   stream is gone once both sides have finished or either reset it;
 * - PINGs of the peer are echoed; WINDOW_UPDATE is sent for what is read
 *   (a strict SPDY/3.1 peer keeps sending) while the peer's windows are not
 *   enforced on what we send, as spdystream enforces none (it never sends
 *   WINDOW_UPDATE, so a sender that waited on its windows would stall);
 * - `close()` sends GOAWAY, lets what is written drain and ends the
 *   connection; a peer's GOAWAY refuses new streams and ends the session
 *   once the open ones are done.
 * Any framing error ends the session with GOAWAY PROTOCOL_ERROR. A stream
 * whose reader falls behind pauses the connection (spdystream blocks its
 * reader the same way), so memory stays bounded.
 *
 * Example (server side):
 *   const s = new SpdySession(socket, { server: true });
 *   s.on('stream', (stream) => stream.pipe(stream));
 */
export interface SpdySessionOptions {
  server: boolean;
  /** Decide on a stream the peer opens: a string refuses it (RST_STREAM REFUSED_STREAM) and is reported in 'refused'. */
  accept?: (headers: SpdyHeaders) => string | undefined;
  /** Streams open at once; more are refused. */
  maxStreams?: number;
  /** Ends the connection when nothing arrives for this long (kubelet: 4 h); 0 never. */
  idleTimeoutMs?: number;
}

export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: SpdyHeaders;
  readonly #session: SpdySession;
  /** The peer reset it (RST_STREAM). */
  resetByPeer = false;
  #replied: boolean;
  #onReply: Array<(err?: Error) => void> = [];

  constructor(session: SpdySession, id: number, headers: SpdyHeaders, replied: boolean) {
    super({ allowHalfOpen: true });
    this.#session = session;
    this.id = id;
    this.headers = headers;
    this.#replied = replied;
  }

  /** The first value of a header of the SYN_STREAM. */
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#session._sendData(this.id, chunk, 0, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#session._sendData(this.id, Buffer.alloc(0), FLAG_FIN, cb);
  }

  override _read(): void {
    this.#session._resumeFor(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A stream dropped before both sides finished tells the peer, so it stops sending.
    if (!this.resetByPeer && !(this.writableFinished && this.readableEnded)) this.#session._sendRst(this.id, RstStatus.CANCEL);
    this.#session._remove(this);
    this.#settleReply(err ?? new Error(`SPDY stream ${this.id} closed before its reply`));
    cb(err);
  }

  /** Abort the stream (RST_STREAM with `status`, CANCEL by default). */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.destroyed) return;
    this.#session._sendRst(this.id, status);
    this.resetByPeer = true; // the RST is sent: _destroy must not send a second
    this.destroy();
  }

  /** Resolves once the peer answered SYN_REPLY (at once for a stream the peer opened). */
  replied(): Promise<void> {
    if (this.#replied) return Promise.resolve();
    return new Promise((resolve, reject) => this.#onReply.push((err) => (err ? reject(err) : resolve())));
  }

  _gotReply(): void {
    if (this.#replied) return;
    this.#replied = true;
    this.#settleReply();
  }

  #settleReply(err?: Error): void {
    const waiters = this.#onReply;
    this.#onReply = [];
    for (const w of waiters) w(err);
  }
}

export class SpdySession extends EventEmitter {
  readonly #socket: Duplex;
  readonly #server: boolean;
  readonly #accept: SpdySessionOptions['accept'];
  readonly #maxStreams: number;
  readonly #reader = new FrameReader();
  readonly #deflater = new HeaderDeflater();
  readonly #inflater = new HeaderInflater();
  readonly #streams = new Map<number, SpdyStream>();
  readonly #queue: SpdyFrame[] = [];
  readonly #pausedBy = new Set<SpdyStream>();
  readonly #drainWaiters: Array<() => void> = [];
  readonly #pings = new Map<number, () => void>();
  #busy = false;
  #nextId: number;
  #nextPing: number;
  #lastReceived = 0;
  #goingAway = false;
  #closed = false;

  constructor(socket: Duplex, opts: SpdySessionOptions) {
    super();
    this.#socket = socket;
    this.#server = opts.server;
    this.#accept = opts.accept;
    this.#maxStreams = opts.maxStreams ?? 1000;
    this.#nextId = opts.server ? 2 : 1;
    this.#nextPing = opts.server ? 2 : 1;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => {
      for (const w of this.#drainWaiters.splice(0)) w();
    });
    // The peer's end of the connection ends the session: our side ends too once written (an upgraded HTTP
    // socket is half-open, and would otherwise stay so).
    socket.on('end', () => {
      this.#teardown();
      this.#socket.end();
    });
    socket.on('error', () => this.#teardown());
    socket.once('close', () => {
      this.#teardown();
      this.#inflater.close();
      this.emit('close');
    });
    if (opts.idleTimeoutMs && 'setTimeout' in socket) {
      (socket as unknown as { setTimeout(ms: number, cb: () => void): void }).setTimeout(opts.idleTimeoutMs, () => this.destroy());
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Open a stream (SYN_STREAM); await `stream.replied()` for the peer's answer. */
  openStream(headers: SpdyHeaders, opts: { fin?: boolean; priority?: number } = {}): SpdyStream {
    if (this.#closed || this.#goingAway) throw new Error('SPDY session is closing');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new SpdyStream(this, id, headers, false);
    this.#streams.set(id, stream);
    const block = this.#deflater.compress(encodeHeaderBlock(headers));
    this.#write(encodeControl(FrameType.SYN_STREAM, opts.fin ? FLAG_FIN : 0, encodeSynStream(id, opts.priority ?? 0, block)));
    if (opts.fin) stream.end();
    return stream;
  }

  /** Round trip of a PING, in ms. */
  ping(): Promise<number> {
    const id = this.#nextPing;
    this.#nextPing += 2;
    const start = performance.now();
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('SPDY session is closed'));
      this.#pings.set(id, () => resolve(performance.now() - start));
      this.#write(encodePing(id));
    });
  }

  /**
   * GOAWAY, then end the connection once what is written has drained. The
   * peer reads everything sent before it; streams still open are closed.
   */
  close(): void {
    if (this.#closed) return;
    if (!this.#goingAway) {
      this.#goingAway = true;
      this.#write(encodeControl(FrameType.GOAWAY, 0, encodeTwoWords(this.#lastReceived, GoAwayStatus.OK)));
    }
    this.#closed = true;
    this.#socket.end();
    // The peer normally closes its side at once; one that does not is not waited for long.
    setTimeout(() => this.#socket.destroy(), 5000).unref();
    this.#teardown();
  }

  /** Drop the connection and every stream at once. */
  destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#teardown();
  }

  // ---------------------------------------------------------------- used by SpdyStream

  _sendData(id: number, data: Buffer, flags: number, cb: (err?: Error | null) => void): void {
    // Writes after the connection ended are dropped, never an error: the stream's owner learns of the end from 'close'.
    let ok = true;
    if (data.length === 0) ok = this.#write(encodeData(id, flags, data));
    for (let at = 0; at < data.length; at += MAX_FRAME_PAYLOAD) {
      const last = at + MAX_FRAME_PAYLOAD >= data.length;
      ok = this.#write(encodeData(id, last ? flags : 0, data.subarray(at, at + MAX_FRAME_PAYLOAD)));
    }
    if (ok) cb();
    else this.#drainWaiters.push(() => cb());
  }

  _sendRst(id: number, status: number): void {
    if (this.#socket.writable) this.#write(encodeControl(FrameType.RST_STREAM, 0, encodeTwoWords(id, status)));
  }

  _remove(stream: SpdyStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    this._resumeFor(stream);
    this.emit('streamClosed', stream);
    if (this.#goingAway && !this.#closed && this.#streams.size === 0) this.close();
  }

  _resumeFor(stream: SpdyStream): void {
    if (this.#pausedBy.delete(stream) && this.#pausedBy.size === 0) this.#socket.resume();
  }

  // ---------------------------------------------------------------- input

  #write(buf: Buffer): boolean {
    if (this.#socket.destroyed || this.#socket.writableEnded) return true;
    return this.#socket.write(buf);
  }

  #onData(chunk: Buffer): void {
    try {
      this.#queue.push(...this.#reader.push(chunk));
    } catch (err) {
      return this.#protocolError(err as Error);
    }
    void this.#drain();
  }

  /** Frames are handled one at a time, in order: a header block must be inflated before the next frame is looked at. */
  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length && !this.#closed) {
        const frame = this.#queue.shift()!;
        const r = frame.kind === 'data' ? this.#onDataFrame(frame) : this.#onControl(frame);
        if (r) await r;
      }
    } catch (err) {
      this.#protocolError(err as Error);
    } finally {
      this.#busy = false;
    }
  }

  #onDataFrame(f: Extract<SpdyFrame, { kind: 'data' }>): void {
    const stream = this.#streams.get(f.streamId);
    // Data for a stream already reset or finished is dropped, as spdystream drops it.
    if (!stream || stream.readableEnded || stream.destroyed) return;
    if (f.data.length) {
      if (!stream.push(f.data)) {
        this.#pausedBy.add(stream);
        this.#socket.pause();
      }
      if (!(f.flags & FLAG_FIN)) {
        this.#write(encodeControl(FrameType.WINDOW_UPDATE, 0, encodeTwoWords(f.streamId, f.data.length)));
      }
      this.#write(encodeControl(FrameType.WINDOW_UPDATE, 0, encodeTwoWords(0, f.data.length)));
    }
    if (f.flags & FLAG_FIN) stream.push(null);
  }

  #onControl(f: Extract<SpdyFrame, { kind: 'control' }>): Promise<void> | void {
    switch (f.type) {
      case FrameType.SYN_STREAM:
        return this.#onSynStream(f);
      case FrameType.SYN_REPLY:
        return this.#onHeaders(f, true);
      case FrameType.HEADERS:
        return this.#onHeaders(f, false);
      case FrameType.RST_STREAM: {
        const [id] = parseTwoWords(f.payload, 'RST_STREAM');
        const stream = this.#streams.get(id);
        if (stream) {
          stream.resetByPeer = true;
          this.emit('reset', stream);
          stream.destroy();
        }
        return;
      }
      case FrameType.PING: {
        if (f.payload.length !== 4) throw new SpdyProtocolError(`PING frame of ${f.payload.length} bytes, not 4`);
        const id = f.payload.readUInt32BE(0);
        const ours = (id & 1) === (this.#server ? 0 : 1);
        if (!ours) this.#write(encodePing(id));
        else {
          this.#pings.get(id)?.();
          this.#pings.delete(id);
        }
        return;
      }
      case FrameType.GOAWAY:
        parseTwoWords(f.payload, 'GOAWAY');
        this.#goingAway = true;
        this.emit('goaway');
        if (this.#streams.size === 0) this.close();
        return;
      default:
        // SETTINGS and WINDOW_UPDATE carry nothing we act on; unknown control frames are ignored, as the draft says.
        return;
    }
  }

  async #onSynStream(f: Extract<SpdyFrame, { kind: 'control' }>): Promise<void> {
    const syn = parseSynStream(f.payload);
    // The header block is inflated even for a stream we refuse: the peer's compression context moves on.
    const headers = decodeHeaderBlock(await this.#inflater.inflate(syn.block));
    if (f.version !== SPDY_VERSION) return this._sendRst(syn.streamId, RstStatus.UNSUPPORTED_VERSION);
    const fromClient = (syn.streamId & 1) === 1;
    if (syn.streamId === 0 || fromClient !== this.#server) throw new SpdyProtocolError(`stream id ${syn.streamId} from the wrong side`);
    if (syn.streamId <= this.#lastReceived) throw new SpdyProtocolError(`stream id ${syn.streamId} does not increase`);
    this.#lastReceived = syn.streamId;
    if (this.#goingAway) return this._sendRst(syn.streamId, RstStatus.REFUSED_STREAM);
    const refusal = this.#streams.size >= this.#maxStreams ? `more than ${this.#maxStreams} streams open` : this.#accept?.(headers);
    if (refusal !== undefined) {
      this._sendRst(syn.streamId, RstStatus.REFUSED_STREAM);
      this.emit('refused', headers, refusal);
      return;
    }
    const stream = new SpdyStream(this, syn.streamId, headers, true);
    this.#streams.set(syn.streamId, stream);
    this.#write(encodeControl(FrameType.SYN_REPLY, 0, encodeStreamHeaders(syn.streamId, this.#deflater.compress(encodeHeaderBlock({})))));
    if (f.flags & FLAG_FIN) stream.push(null);
    this.emit('stream', stream);
  }

  async #onHeaders(f: Extract<SpdyFrame, { kind: 'control' }>, reply: boolean): Promise<void> {
    const { streamId, block } = parseStreamHeaders(f.payload);
    decodeHeaderBlock(await this.#inflater.inflate(block));
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    if (reply) stream._gotReply();
    if (f.flags & FLAG_FIN && !stream.readableEnded) stream.push(null);
  }

  #protocolError(err: Error): void {
    if (this.#closed) return;
    this.emit('protocolError', err);
    this.#write(encodeControl(FrameType.GOAWAY, 0, encodeTwoWords(this.#lastReceived, GoAwayStatus.PROTOCOL_ERROR)));
    this.#goingAway = true;
    this.#closed = true;
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    this.#teardown();
  }

  /** Nothing more can be sent or received: every stream ends (readers see end of file) and goes. */
  #teardown(): void {
    this.#closed = true;
    for (const s of [...this.#streams.values()]) {
      s.resetByPeer = true; // no RST on a connection that is over
      if (!s.readableEnded) s.push(null);
      s.destroy();
    }
    for (const w of this.#drainWaiters.splice(0)) w();
  }
}
