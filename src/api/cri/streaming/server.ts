import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from '../../../core/log.ts';
import { PORTFORWARD_PROTOCOLS, PORTFORWARD_WS_PROTOCOLS, checkPortStream, serveSpdyPortForward, serveWsPortForward, type Dialer } from './portforward.ts';
import { REMOTECOMMAND_PROTOCOLS, REMOTECOMMAND_WS_PROTOCOLS, serveCommand, spdyCommandChannels, wsCommandChannels, type ProcessIO } from './remotecommand.ts';
import { SpdySession } from './spdy-session.ts';
import { RequestCache } from './tokens.ts';
import { acceptKey, isValidKey, WebSocketConn } from './websocket.ts';

// node:http's ESM facade reads every export, and its lazy WebSocket,
// MessageEvent and CloseEvent load undici, which berthd never uses (~2 MiB
// of its RSS; 11 in a bare Node). process.getBuiltinModule reads no exports.
const { createServer, STATUS_CODES } = process.getBuiltinModule('node:http');

/**
 * The CRI streaming server: the URLs that Exec, Attach and PortForward
 * answer, served as kubelet's streaming library serves them (containerd
 * embeds the same): `GET|POST /exec/{token}`, `/attach/{token}`,
 * `/portforward/{token}`, each upgraded to SPDY/3.1 (negotiated with
 * X-Stream-Protocol-Version) or to a WebSocket (negotiated with
 * Sec-WebSocket-Protocol). A token is taken at the first request that
 * names it: an unknown, used or expired one is 404 "404 page not found".
 * A handshake that fails answers kubelet's statuses: 400 for a missing
 * X-Stream-Protocol-Version or upgrade headers, 403 when no protocol is
 * common (with X-Accepted-Stream-Protocol-Versions).
 *
 * Plain HTTP on `address:port` (port 0: one chosen at start), loopback by
 * default as containerd's; the URLs carry the address actually bound.
 * `close()` ends every connection.
 *
 * Example:
 *   const s = new StreamingServer({ address: '127.0.0.1', port: 0, runtime, log });
 *   await s.start();
 *   s.url({ kind: 'exec', containerId, cmd: ['sh'], stdin: true, stdout: true, stderr: false, tty: true });
 */
export type StreamRequest =
  | { kind: 'exec'; containerId: string; cmd: string[]; stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }
  | { kind: 'attach'; containerId: string; stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }
  | { kind: 'portforward'; podSandboxId: string; ports: number[] };

/** What the server runs: the CRI door supplies it from the container and sandbox services. */
export interface StreamingRuntime {
  exec(req: Extract<StreamRequest, { kind: 'exec' }>): Promise<ProcessIO>;
  attach(req: Extract<StreamRequest, { kind: 'attach' }>): Promise<ProcessIO>;
  /** A connection to 127.0.0.1:`port` in the pod's network namespace. */
  dial(podSandboxId: string, port: number): Promise<Duplex>;
}

export interface StreamingServerOptions {
  address: string;
  port: number;
  runtime: StreamingRuntime;
  log: Logger;
  /** A connection with no traffic for this long is closed (kubelet's default: 4 h). */
  idleTimeoutMs?: number;
  /** How long a SPDY client has to open its streams (kubelet's: 30 s). */
  creationTimeoutMs?: number;
  /** How long a URL is valid (kubelet's: 1 min). */
  tokenTtlMs?: number;
}

const ROUTE = /^\/(exec|attach|portforward)\/([^/]+)$/;

export class StreamingServer {
  readonly #o: Required<StreamingServerOptions>;
  readonly #cache: RequestCache<StreamRequest>;
  readonly #server: http.Server;
  readonly #sockets = new Set<Duplex>();
  #base = '';

  constructor(opts: StreamingServerOptions) {
    this.#o = { idleTimeoutMs: 4 * 3600_000, creationTimeoutMs: 30_000, tokenTtlMs: 60_000, ...opts };
    this.#cache = new RequestCache({ ttlMs: this.#o.tokenTtlMs });
    this.#server = createServer((req, res) => this.#onRequest(req, { res }));
    this.#server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.#onRequest(req, { socket, head }));
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    // A client that sends garbage or vanishes mid-request costs its own connection, nothing more.
    this.#server.on('clientError', (_err, socket) => socket.destroy());
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port, this.#o.address, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const a = this.#server.address() as AddressInfo;
    this.#base = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** http://address:port, once started. */
  get baseUrl(): string {
    return this.#base;
  }

  /** The URL for a request: single-use, valid for the token lifetime. ResourceExhausted past 1000 unused. */
  url(req: StreamRequest): string {
    return `${this.#base}/${req.kind}/${this.#cache.insert(req)}`;
  }

  /** Open connections (upgraded or not). */
  get connections(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  #onRequest(req: http.IncomingMessage, to: { res?: http.ServerResponse; socket?: Socket; head?: Buffer }): void {
    const reply = (status: number, body: string, headers: Record<string, string | string[]> = {}) => answer(to, status, body, headers);
    const m = ROUTE.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (!m) return reply(404, '404 page not found\n');
    if (req.method !== 'GET' && req.method !== 'POST') return reply(405, '405: Method Not Allowed');
    const cached = this.#cache.consume(m[2]);
    if (!cached || cached.kind !== m[1]) return reply(404, '404 page not found\n');
    const log = this.#o.log.child({ stream: cached.kind });
    if (isWebSocket(req)) return this.#upgradeWebSocket(req, to, cached, log);
    const protocols: readonly string[] = cached.kind === 'portforward' ? PORTFORWARD_PROTOCOLS : REMOTECOMMAND_PROTOCOLS;
    const values = headerList(req.headers['x-stream-protocol-version']);
    if (req.headers['x-stream-protocol-version'] === undefined) {
      return reply(400, `unable to upgrade: header X-Stream-Protocol-Version does not exist in request with ${Object.keys(req.headers).length} headers\n`);
    }
    if (!values.length) return reply(400, `unable to upgrade: header X-Stream-Protocol-Version contains no valid protocols\n`);
    const protocol = values.find((v) => protocols.includes(v));
    if (!protocol) {
      return reply(403, `unable to upgrade: unable to negotiate protocol: client supports [${values.join(' ')}], server accepts [${protocols.join(' ')}]\n`, {
        'X-Accepted-Stream-Protocol-Versions': [...protocols],
      });
    }
    const connection = String(req.headers.connection ?? '').toLowerCase();
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (!to.socket || !connection.includes('upgrade') || !upgrade.includes('spdy/3.1')) return reply(400, 'unable to upgrade: missing upgrade headers in request\n');
    const socket = to.socket;
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    if (to.head?.length) socket.unshift(to.head);
    socket.setNoDelay(true);
    this.#serveSpdy(socket, protocol, cached, log);
  }

  #serveSpdy(socket: Duplex, protocol: string, cached: StreamRequest, log: Logger): void {
    const pf = cached.kind === 'portforward';
    const valid = new Set(['error', 'stdin', 'stdout', 'stderr', 'resize']);
    const session = new SpdySession(socket, {
      server: true,
      idleTimeoutMs: this.#o.idleTimeoutMs,
      accept: (h) => (pf ? checkPortStream(h) : valid.has(h['streamtype']?.[0] ?? '') ? undefined : `unexpected stream type "${h['streamtype']?.[0] ?? ''}"`),
    });
    session.on('protocolError', (err: Error) => log.debug('SPDY protocol error', { err: err.message }));
    session.on('refused', (_h, reason: string) => log.debug('stream rejected', { reason }));
    if (cached.kind === 'portforward') {
      serveSpdyPortForward(session, this.#dialer(cached.podSandboxId), { timeoutMs: this.#o.creationTimeoutMs, podId: cached.podSandboxId, log });
      return;
    }
    spdyCommandChannels(session, protocol, cached, this.#o.creationTimeoutMs).then(
      (ch) => this.#serveCommand(ch, cached, log),
      (err: Error) => {
        log.debug('streams not created', { err: err.message });
        session.destroy();
      },
    );
  }

  #upgradeWebSocket(req: http.IncomingMessage, to: { res?: http.ServerResponse; socket?: Socket; head?: Buffer }, cached: StreamRequest, log: Logger): void {
    const reply = (status: number, body: string, headers: Record<string, string | string[]> = {}) => answer(to, status, body, headers);
    if (req.method !== 'GET') return reply(405, 'websocket: the handshake method must be GET\n');
    if (req.headers['sec-websocket-version'] !== '13') return reply(400, 'websocket: unsupported version\n', { 'Sec-WebSocket-Version': '13' });
    const key = req.headers['sec-websocket-key'];
    if (!isValidKey(key)) return reply(400, 'websocket: the Sec-WebSocket-Key header is missing or invalid\n');
    if (!to.socket) return reply(400, 'websocket: missing upgrade headers\n');
    const offered = headerList(req.headers['sec-websocket-protocol']);
    const supported: readonly string[] = cached.kind === 'portforward' ? [...PORTFORWARD_WS_PROTOCOLS, SPDY_TUNNEL_PORTFORWARD] : REMOTECOMMAND_WS_PROTOCOLS;
    const protocol = (offered.length ? offered : ['']).find((p) => supported.includes(p));
    if (protocol === undefined) return reply(403, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${supported.filter(Boolean).join(' ')}]\n`);
    const socket = to.socket;
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key!)}\r\n` +
        (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
        '\r\n',
    );
    if (to.head?.length) socket.unshift(to.head);
    socket.setNoDelay(true);
    const ws = new WebSocketConn(socket, { server: true, idleTimeoutMs: this.#o.idleTimeoutMs });
    ws.on('protocolError', (err: Error) => log.debug('WebSocket protocol error', { err: err.message }));
    if (cached.kind === 'portforward') {
      if (protocol === SPDY_TUNNEL_PORTFORWARD) return this.#serveSpdy(messagesAsStream(ws), PORTFORWARD_PROTOCOLS[0], cached, log);
      void serveWsPortForward(ws, protocol, cached.ports, this.#dialer(cached.podSandboxId), { podId: cached.podSandboxId, log }).catch((err) =>
        log.debug('port forward ended', { err: (err as Error).message }),
      );
      return;
    }
    this.#serveCommand(wsCommandChannels(ws, protocol, cached), cached, log);
  }

  #serveCommand(ch: ReturnType<typeof wsCommandChannels>, cached: Exclude<StreamRequest, { kind: 'portforward' }>, log: Logger): void {
    const start = () => (cached.kind === 'exec' ? this.#o.runtime.exec(cached) : this.#o.runtime.attach(cached));
    void serveCommand(ch, start, { cmd: cached.kind === 'exec' ? cached.cmd : undefined, log }).catch((err) => log.warn('stream session failed', { err: (err as Error).message }));
  }

  #dialer(podId: string): Dialer {
    return (port) => this.#o.runtime.dial(podId, port);
  }
}

/** kubectl's port-forward over a WebSocket that carries SPDY (Kubernetes 1.30 on): SPDY frames in binary messages. */
export const SPDY_TUNNEL_PORTFORWARD = 'SPDY/3.1+portforward.k8s.io';

/** The binary messages of a WebSocket as one byte stream, for a SPDY session tunnelled in it. */
function messagesAsStream(ws: WebSocketConn): Duplex {
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (ws.send(chunk)) cb();
      else ws.once('drain', () => cb());
    },
    final(cb) {
      ws.close(1000);
      cb();
    },
    read() {
      ws.resume();
    },
    destroy(err, cb) {
      ws.destroy();
      cb(err);
    },
  });
  ws.on('message', (data: Buffer) => {
    if (!d.push(data)) ws.pause();
  });
  ws.once('close', () => {
    d.push(null);
    d.destroy();
  });
  return d;
}

function isWebSocket(req: http.IncomingMessage): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' && String(req.headers.connection ?? '').toLowerCase().includes('upgrade');
}

function headerList(v: string | string[] | undefined): string[] {
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
}

/** An HTTP answer on a plain request or on a socket the server handed over for an upgrade. */
function answer(to: { res?: http.ServerResponse; socket?: Socket }, status: number, body: string, headers: Record<string, string | string[]>): void {
  const all = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers };
  if (to.res) {
    // One request per connection, as every URL is single-use: nothing to keep alive for.
    to.res.shouldKeepAlive = false;
    to.res.writeHead(status, all);
    to.res.end(body);
    return;
  }
  const s = to.socket!;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  for (const [k, v] of Object.entries(all)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', '');
  s.end(lines.join('\r\n') + body);
  setTimeout(() => s.destroy(), 1000).unref();
}
