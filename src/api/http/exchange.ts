import type http from 'node:http';
import { Duplex } from 'node:stream';
import { readJson, readUpgradeJson } from './body.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import { checkBody, t, type Schema } from '../../core/schema.ts';
import { peerHungUp } from '../../core/sys.ts';

// node:http's ESM facade reads every export, and its lazy WebSocket,
// MessageEvent and CloseEvent load undici, which berthd never uses (~2 MiB
// of its RSS; 11 in a bare Node). process.getBuiltinModule reads no exports.
const { createServer, STATUS_CODES } = process.getBuiltinModule('node:http');

const ANY_OBJECT = t.object({});

/**
 * One request and its answer on a connection the client may leave at any
 * moment: the only place the HTTP doors write status lines, whole answers
 * and errors, so none of them can throw into the event loop when the peer
 * is gone.
 *
 * node:http takes its own error listener off a connection it hands over
 * for an upgrade: a write on it after the client left (EPIPE, ECONNRESET)
 * would then be an uncaught exception, fatal to berthd. Every upgraded
 * connection gets a listener before a handler sees it, and every write
 * below checks the connection first.
 *
 * Lifecycle: the server makes an exchange per request (`createHttpServer`),
 * the door's handler reads the body, then either `answer`s once, or takes
 * the connection over with `stream` (a 200 whose body the handler writes),
 * `hijackResponse` (a 200 whose body is a raw stream both ways, for a client
 * that did not ask to upgrade) or `upgrade` (101 and the raw socket); the
 * door calls `release` when its handler returns. `gone` aborts when the
 * client leaves, also after a takeover, for as long as the connection lives.
 *
 * Example:
 *   createHttpServer(async (ex) => {
 *     try { ex.answer(200, {}, JSON.stringify(await work(ex.gone))); }
 *     catch (err) { ex.answer(500, {}, String(err)); }
 *     finally { ex.release(); }
 *   });
 */
export class HttpExchange {
  readonly req: http.IncomingMessage;
  /** The response of an ordinary request; undefined for an upgrade request. */
  readonly res: http.ServerResponse | undefined;
  /** The raw connection of an upgrade request. */
  readonly socket: Duplex | undefined;
  readonly #abort = new AbortController();
  readonly #onClose = () => this.#abort.abort(berthError('Canceled', 'client went away'));
  /** Bytes after the head not yet given to the handler: an upgrade request's body, then its stream. */
  #pending: Buffer | undefined;
  #taken: 'stream' | 'connection' | undefined;

  constructor(req: http.IncomingMessage, res: http.ServerResponse | undefined, socket?: Duplex, head?: Buffer) {
    this.req = req;
    this.res = res;
    this.socket = res ? undefined : socket;
    this.#pending = head;
    const conn = (res ?? socket)!;
    conn.on('error', ignore);
    conn.once('close', this.#onClose);
    if (res ? res.destroyed || req.socket.destroyed : socket!.destroyed) this.#onClose();
  }

  /** Aborted (Canceled) once the client has gone. */
  get gone(): AbortSignal {
    return this.#abort.signal;
  }

  /** Whether the handler took the connection over (a stream, a hijack or an upgrade). */
  get taken(): boolean {
    return this.#taken !== undefined;
  }

  /**
   * The parsed JSON body, checked against `schema` (every body is a JSON
   * object, whatever else it holds); undefined when empty. InvalidArgument,
   * worded in the door's `style`, when malformed or of the wrong shape;
   * Canceled when the client left midway.
   */
  async json<T>(schema: Schema = ANY_OBJECT, style: 'docker' | 'plain' = 'plain'): Promise<T> {
    let body: T;
    if (!this.socket) body = await readJson<T>(this.req);
    else {
      body = await readUpgradeJson<T>(this.req, this.socket, this.#pending);
      this.#pending = undefined;
    }
    checkBody(schema, body, style);
    return body;
  }

  /** Read the body and drop it, whatever it holds: dockerd ignores an attach's (dockerode sends its options there). */
  async discardBody(): Promise<void> {
    if (!this.socket) {
      this.req.resume();
      return;
    }
    try {
      await readUpgradeJson(this.req, this.socket, this.#pending);
    } catch (err) {
      if (kindOf(err) !== 'InvalidArgument' || !/not valid JSON/.test((err as Error).message)) throw err;
    }
    this.#pending = undefined;
  }

  /**
   * A whole answer. Nothing is written to a client that has gone; an answer
   * after the headers went out can only cut the connection. On an upgrade
   * request's connection the answer ends it.
   */
  answer(status: number, headers: Record<string, string | number>, body?: string | Buffer, opts: { head?: boolean } = {}): void {
    const res = this.res;
    if (res) {
      if (res.headersSent) return void res.destroy();
      if (res.destroyed || res.writableEnded) return;
      const h: Record<string, string | number> = { ...headers };
      if (body !== undefined && body.length) h['content-length'] = Buffer.byteLength(body);
      res.writeHead(status, h);
      res.end(opts.head ? undefined : body);
      return;
    }
    const socket = this.socket!;
    if (this.#taken || socket.destroyed || !socket.writable) return void socket.destroy();
    const text = body ?? '';
    const head = statusLine(status) + headerLines({ ...headers, 'content-length': Buffer.byteLength(text), connection: 'close' });
    socket.end(opts.head ? head : Buffer.concat([Buffer.from(head), Buffer.from(text)]));
    closeAfterAnswer(socket);
  }

  /** Answer 200 (or `status`) with `headers` now and hand the response to the handler, which writes the body and ends it. */
  stream(status: number, headers: Record<string, string | number>): http.ServerResponse {
    if (!this.res) throw berthError('InvalidArgument', 'this endpoint cannot stream on an upgraded connection');
    this.#taken = 'stream';
    if (!this.res.destroyed) {
      this.res.writeHead(status, headers);
      this.res.flushHeaders();
    }
    return this.res;
  }

  /** For a client that did not ask to upgrade: a 200 whose body is the raw stream, both ways. */
  hijackResponse(status: number, headers: Record<string, string | number>): Duplex {
    const res = this.stream(status, headers);
    this.#taken = 'connection';
    closeWhenPeerGone(this.req.socket);
    const duplex = Duplex.from({ readable: this.req, writable: res });
    duplex.on('error', ignore);
    return duplex;
  }

  /** Switch protocols: write the 101 (`reason` after the code) and hand over the raw connection, with any bytes already read. */
  upgrade(reason: string, headers: Record<string, string | number>): Duplex {
    const socket = this.socket;
    if (!socket) throw berthError('InvalidArgument', 'this endpoint needs Connection: Upgrade');
    this.#taken = 'connection';
    closeWhenPeerGone(socket);
    if (!socket.destroyed && socket.writable) socket.write(`HTTP/1.1 101 ${reason}\r\n${headerLines(headers)}`);
    if (this.#pending?.length) socket.unshift(this.#pending);
    this.#pending = undefined;
    return socket;
  }

  /**
   * The handler has returned. A connection taken over outlives it, and
   * `gone` must still abort when its client leaves, or everything listening
   * on the signal stays alive; otherwise the link is dropped.
   */
  release(): void {
    if (this.#taken === 'connection') return;
    (this.res ?? this.socket)!.off('close', this.#onClose);
  }
}

/**
 * The node:http server of a door: one exchange per request, upgrade
 * requests included. Malformed requests and clients that leave before
 * their head is read stay node:http's (a 400, or the connection closed).
 */
export function createHttpServer(onExchange: (ex: HttpExchange) => void): http.Server {
  const server = createServer({ keepAlive: true });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => onExchange(new HttpExchange(req, res)));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => onExchange(new HttpExchange(req, undefined, socket, head)));
  return server;
}

function ignore(): void {
  // The connection is destroyed with its error; the exchange's `gone` tells the handler.
}

function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
}

/** Header lines and the blank line after them; a value cannot smuggle a line of its own. */
function headerLines(headers: Record<string, string | number>): string {
  let out = '';
  for (const [k, v] of Object.entries(headers)) out += `${k}: ${String(v).replace(/[\r\n]/g, ' ')}\r\n`;
  return out + '\r\n';
}

/**
 * A peer that neither reads nor closes must not hold the descriptor. After
 * the answer the connection is read to its end (a paused socket never sees
 * the peer's end, and with both sides ended node destroys it), and given up
 * after a while.
 */
const ANSWER_LINGER_MS = 10_000;

function closeAfterAnswer(socket: Duplex): void {
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), ANSWER_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** How often a half-closed connection is asked whether its peer has gone altogether. */
const HANGUP_POLL_MS = 1000;

/**
 * A taken-over connection whose peer half-closed may still be read by it
 * (docker's CLI half-closes when its input ends and reads the output to
 * the end), so its end is no reason to close. But a peer that went away
 * altogether is only noticed on the next write, and a container that
 * prints nothing never writes: the descriptor, and the task stream behind
 * it, would stay for the container's life. So once the peer's side ends,
 * the connection is closed as soon as the peer has hung up for good.
 */
function closeWhenPeerGone(socket: Duplex): void {
  socket.once('end', () => {
    const fd = (socket as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return;
    const check = () => {
      if (socket.destroyed) return clearInterval(timer);
      let gone = true;
      try {
        gone = peerHungUp(fd);
      } catch {
        // The descriptor went with the socket.
      }
      if (gone) {
        clearInterval(timer);
        socket.destroy();
      }
    };
    const timer = setInterval(check, HANGUP_POLL_MS);
    timer.unref();
    socket.once('close', () => clearInterval(timer));
    check();
  });
}
