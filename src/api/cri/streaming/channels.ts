import { PassThrough, Writable, type Readable } from 'node:stream';
import type { WebSocketConn } from './websocket.ts';

/**
 * The Kubernetes channel protocol over a WebSocket (k8s.io/streaming's
 * wsstream): every message starts with its channel number (0 stdin, 1
 * stdout, 2 stderr, 3 error, 4 resize for remote commands; 2n data and
 * 2n+1 error for the n-th forwarded port), as a byte, or as an ASCII digit
 * followed by base64 in the `base64.` variants (text messages). In
 * v5.channel.k8s.io a message [255, n] closes channel n (the client's end
 * of stdin). Input for a channel nobody reads is dropped.
 */
export const STREAM_CLOSE_SIGNAL = 255;

export interface ChannelOptions {
  base64: boolean;
  /** Whether [255, n] closes channel n (v5). */
  closeSignal: boolean;
  /** Channels the peer may write to. */
  readable: readonly number[];
}

export class WsChannels {
  readonly #ws: WebSocketConn;
  readonly #opts: ChannelOptions;
  readonly #inputs = new Map<number, PassThrough>();
  readonly #paused = new Set<number>();

  constructor(ws: WebSocketConn, opts: ChannelOptions) {
    this.#ws = ws;
    this.#opts = opts;
    for (const n of opts.readable) {
      const p = new PassThrough();
      // A reader that keeps up lets the socket flow; one that falls behind holds the whole connection, as for SPDY.
      p.on('drain', () => {
        if (this.#paused.delete(n) && this.#paused.size === 0) ws.resume();
      });
      this.#inputs.set(n, p);
    }
    ws.on('message', (data: Buffer, binary: boolean) => this.#onMessage(data, binary));
    ws.on('close', () => {
      for (const p of this.#inputs.values()) if (!p.writableEnded) p.end();
    });
  }

  /** What the peer writes on channel `n`; ends when it closes the channel (v5) or the connection. */
  input(n: number): Readable {
    const p = this.#inputs.get(n);
    if (!p) throw new RangeError(`channel ${n} is not readable`);
    return p;
  }

  /** A writable for channel `n`: each write one message; end() does not close the connection. */
  output(n: number): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.send(n, chunk)) cb();
        else this.#ws.once('drain', () => cb());
      },
    });
  }

  /** One message on channel `n` (an empty one says the connection is ready). Returns false when the socket is full. */
  send(n: number, data: Buffer): boolean {
    if (this.#opts.base64) return this.#ws.send(String.fromCharCode(48 + n) + data.toString('base64'), false);
    return this.#ws.send(Buffer.concat([Buffer.from([n]), data]), true);
  }

  #onMessage(data: Buffer, _binary: boolean): void {
    if (!data.length) return;
    if (this.#opts.closeSignal && data[0] === STREAM_CLOSE_SIGNAL) {
      if (data.length === 2) this.#inputs.get(data[1])?.end();
      return;
    }
    const n = this.#opts.base64 ? data[0] - 48 : data[0];
    const p = this.#inputs.get(n);
    if (!p || p.writableEnded) return;
    let payload = data.subarray(1);
    if (this.#opts.base64) payload = Buffer.from(payload.toString('latin1'), 'base64');
    if (!p.write(payload)) {
      this.#paused.add(n);
      this.#ws.pause();
    }
  }
}
