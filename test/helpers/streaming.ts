import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import zlib from 'node:zlib';
import { HEADER_DICTIONARY } from '../../src/api/cri/streaming/spdy-frames.ts';

/**
 * Streaming clients for tests, written apart from the server's code so a
 * mistake on one side is not mirrored on the other: a SPDY/3.1 client that
 * compresses its headers with real zlib (so the server's inflater meets
 * back-references into the dictionary and earlier blocks, as from Go's
 * spdystream), and a WebSocket client that masks its frames. Both speak
 * the Kubernetes protocols on top: remote commands and port forwarding.
 */

export interface UpgradeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  socket: net.Socket;
  rest: Buffer;
}

/** Send an HTTP/1.1 request with `headers` and read the answer's head (and, when not 101, its body until close). */
export async function httpUpgrade(url: string, headers: Record<string, string>, method = 'POST'): Promise<UpgradeAnswer> {
  const u = new URL(url);
  const socket = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''];
  socket.write(lines.join('\r\n'));
  let buf = Buffer.alloc(0);
  for (;;) {
    const chunk = await new Promise<Buffer | null>((resolve, reject) => {
      const onData = (d: Buffer) => (cleanup(), resolve(d));
      const onEnd = () => (cleanup(), resolve(null));
      const onErr = (e: Error) => (cleanup(), reject(e));
      const cleanup = () => socket.off('data', onData).off('end', onEnd).off('error', onErr);
      socket.on('data', onData).once('end', onEnd).once('error', onErr);
    });
    if (chunk) buf = Buffer.concat([buf, chunk]);
    const at = buf.indexOf('\r\n\r\n');
    if (at >= 0 || !chunk) {
      const head = buf.subarray(0, at < 0 ? buf.length : at).toString().split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const hs: Record<string, string> = {};
      for (const l of head.slice(1)) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).toLowerCase();
        hs[k] = hs[k] ? `${hs[k]}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim();
      }
      let rest = at < 0 ? Buffer.alloc(0) : buf.subarray(at + 4);
      socket.pause();
      if (status === 101) return { status, headers: hs, body: '', socket, rest };
      // The body of a refusal: read to the connection's end (the server closes it).
      socket.resume();
      while (!socket.readableEnded && !socket.destroyed) {
        const more = await new Promise<Buffer | null>((resolve) => {
          socket.once('data', resolve);
          socket.once('end', () => resolve(null));
          socket.once('close', () => resolve(null));
        });
        if (!more) break;
        rest = Buffer.concat([rest, more]);
      }
      socket.destroy();
      return { status, headers: hs, body: rest.toString(), socket, rest: Buffer.alloc(0) };
    }
  }
}

// ---------------------------------------------------------------- SPDY

class Zstream {
  #z: zlib.Deflate | zlib.Inflate;
  #out: Buffer[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  constructor(z: zlib.Deflate | zlib.Inflate) {
    this.#z = z;
    z.on('data', (d: Buffer) => this.#out.push(d));
  }
  run(input: Buffer): Promise<Buffer> {
    const p = this.#chain.then(
      () =>
        new Promise<Buffer>((resolve) => {
          this.#z.write(input);
          this.#z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            const out = Buffer.concat(this.#out);
            this.#out = [];
            resolve(out);
          });
        }),
    );
    this.#chain = p;
    return p;
  }
}

function headerBlock(h: Record<string, string>): Buffer {
  const parts: Buffer[] = [u32(Object.keys(h).length)];
  for (const [k, v] of Object.entries(h)) parts.push(u32(Buffer.byteLength(k)), Buffer.from(k), u32(Buffer.byteLength(v)), Buffer.from(v));
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function control(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80030000 | type) >>> 0, 0);
  h.writeUInt32BE(((flags << 24) | payload.length) >>> 0, 4);
  return Buffer.concat([h, payload]);
}

export interface ClientStream {
  id: number;
  /** Everything the server sent on the stream, until its FIN (or reset). */
  data: PassThrough;
  reset: boolean;
  replied: Promise<void>;
  write(data: Buffer | string): void;
  /** FIN: half-close. */
  end(): void;
  rst(): void;
}

/** A SPDY/3.1 client session on an upgraded socket. */
export class SpdyClient extends EventEmitter {
  readonly socket: net.Socket;
  readonly streams = new Map<number, ClientStream & { _reply: () => void }>();
  #next = 1;
  #deflate = new Zstream(zlib.createDeflate({ dictionary: HEADER_DICTIONARY }));
  #inflate = new Zstream(zlib.createInflate({ dictionary: HEADER_DICTIONARY }));
  #buf = Buffer.alloc(0);
  #queue: Promise<void> = Promise.resolve();
  goaway = false;
  frames: Array<{ type: number | 'data'; streamId?: number }> = [];

  constructor(socket: net.Socket, rest: Buffer) {
    super();
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const s of this.streams.values()) if (!s.data.writableEnded) s.data.end();
      this.emit('close');
    });
    socket.resume();
    if (rest.length) this.#onData(rest);
  }

  /** SYN_STREAM with `headers`; resolves with the stream once it is sent. */
  async open(headers: Record<string, string>): Promise<ClientStream> {
    const id = this.#next;
    this.#next += 2;
    let reply!: () => void;
    const replied = new Promise<void>((resolve) => (reply = resolve));
    const s = {
      id,
      data: new PassThrough(),
      reset: false,
      replied,
      _reply: reply,
      write: (data: Buffer | string) => this.#send(dataFrame(id, 0, Buffer.from(data))),
      end: () => this.#send(dataFrame(id, 1, Buffer.alloc(0))),
      rst: () => this.#send(control(3, 0, Buffer.concat([u32(id), u32(5)]))),
    };
    this.streams.set(id, s);
    // Stream ids must increase on the wire: the SYN_STREAMs go out in order through the queue.
    const block = this.#deflate.run(headerBlock(headers));
    this.#queue = this.#queue.then(async () => {
      const b = await block;
      this.socket.write(control(1, 0, Buffer.concat([u32(id), u32(0), Buffer.from([0, 0]), b])));
    });
    await this.#queue;
    return s;
  }

  /** A raw frame, for tests of what the server does with bad input. */
  raw(buf: Buffer): void {
    this.socket.write(buf);
  }

  ping(id: number): void {
    this.#send(control(6, 0, u32(id)));
  }

  close(): void {
    this.socket.end();
  }

  #send(buf: Buffer): void {
    this.#queue = this.#queue.then(() => void this.socket.write(buf));
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 8) {
      const len = this.#buf.readUInt32BE(4) & 0xffffff;
      if (this.#buf.length < 8 + len) break;
      const frame = this.#buf.subarray(0, 8 + len);
      this.#buf = this.#buf.subarray(8 + len);
      this.#queue = this.#queue.then(() => this.#onFrame(frame));
    }
  }

  async #onFrame(f: Buffer): Promise<void> {
    const word = f.readUInt32BE(0);
    const flags = f[4];
    const payload = f.subarray(8);
    if (!(word & 0x80000000)) {
      const s = this.streams.get(word & 0x7fffffff);
      this.frames.push({ type: 'data', streamId: word & 0x7fffffff });
      if (!s) return;
      if (payload.length) s.data.write(Buffer.from(payload));
      if (flags & 1) s.data.end();
      return;
    }
    const type = word & 0xffff;
    this.frames.push({ type, streamId: payload.length >= 4 ? payload.readUInt32BE(0) & 0x7fffffff : undefined });
    if (type === 2) {
      const id = payload.readUInt32BE(0) & 0x7fffffff;
      await this.#inflate.run(payload.subarray(4));
      this.streams.get(id)?._reply();
    } else if (type === 3) {
      const s = this.streams.get(payload.readUInt32BE(0) & 0x7fffffff);
      if (s) {
        s.reset = true;
        s._reply();
        if (!s.data.writableEnded) s.data.end();
      }
      this.emit('rst', payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4));
    } else if (type === 6) {
      this.emit('ping', payload.readUInt32BE(0));
    } else if (type === 7) {
      this.goaway = true;
      this.emit('goaway', payload.readUInt32BE(4));
    }
  }
}

function dataFrame(id: number, flags: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(id, 0);
  h.writeUInt32BE(((flags << 24) | data.length) >>> 0, 4);
  return Buffer.concat([h, data]);
}

export async function spdyConnect(url: string, protocols: string[]): Promise<{ client: SpdyClient; protocol: string }> {
  const a = await httpUpgrade(url, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols.join(', ') });
  if (a.status !== 101) throw Object.assign(new Error(`upgrade answered ${a.status}: ${a.body}`), { status: a.status, body: a.body });
  return { client: new SpdyClient(a.socket, a.rest), protocol: a.headers['x-stream-protocol-version'] };
}

export function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  return new Promise((resolve) => {
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
  });
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** The error stream's text: a metav1 Status in JSON from v4 on. */
  error: string;
}

export interface CommandOptions {
  protocol?: string;
  stdin?: string;
  /** Keep stdin open after the input (the test ends it). */
  keepStdinOpen?: boolean;
  tty?: boolean;
  stderr?: boolean;
  resize?: Array<{ Width: number; Height: number }>;
  /** Called once the streams exist, before stdin is sent. */
  onReady?: (c: { client: SpdyClient; stdin?: ClientStream; resize?: ClientStream }) => void | Promise<void>;
}

/** A remote command over SPDY as client-go's remotecommand runs it. */
export async function spdyCommand(url: string, o: CommandOptions = {}): Promise<CommandResult> {
  const { client } = await spdyConnect(url, [o.protocol ?? 'v4.channel.k8s.io']);
  const error = await client.open({ streamtype: 'error' });
  error.end();
  const stdin = o.stdin !== undefined || o.keepStdinOpen ? await client.open({ streamtype: 'stdin' }) : undefined;
  const stdout = await client.open({ streamtype: 'stdout' });
  const stderr = o.stderr === false || o.tty ? undefined : await client.open({ streamtype: 'stderr' });
  const resize = o.tty ? await client.open({ streamtype: 'resize' }) : undefined;
  const outs = [collect(stdout.data), stderr ? collect(stderr.data) : Promise.resolve(Buffer.alloc(0)), collect(error.data)];
  await Promise.all([error, stdin, stdout, stderr, resize].filter(Boolean).map((s) => s!.replied));
  for (const size of o.resize ?? []) resize?.write(JSON.stringify(size) + '\n');
  await o.onReady?.({ client, stdin, resize });
  if (stdin && o.stdin !== undefined) stdin.write(o.stdin);
  if (stdin && !o.keepStdinOpen) stdin.end();
  const [out, err, status] = await Promise.all(outs);
  client.close();
  return { stdout: out.toString(), stderr: err.toString(), error: status.toString() };
}

// ---------------------------------------------------------------- WebSocket

export class WsClient extends EventEmitter {
  readonly socket: net.Socket;
  readonly protocol: string;
  #buf = Buffer.alloc(0);
  #closing = false;
  closeCode?: number;

  constructor(socket: net.Socket, protocol: string, rest: Buffer) {
    super();
    this.socket = socket;
    this.protocol = protocol;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => {});
    socket.on('close', () => this.emit('close', this.closeCode));
    // Bytes that came with the handshake's answer wait for the caller's listeners, as socket data does.
    setImmediate(() => {
      if (rest.length) this.#onData(rest);
      socket.resume();
    });
  }

  /** One masked frame. */
  frame(opcode: number, payload: Buffer, fin = true): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]) : Buffer.alloc(4);
    if (len >= 126) {
      if (len > 65535) throw new RangeError('test frames stay under 64 KiB');
      head[0] = (fin ? 0x80 : 0) | opcode;
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    }
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  send(channel: number, data: Buffer | string): void {
    this.frame(2, Buffer.concat([Buffer.from([channel]), Buffer.from(data)]));
  }

  close(code = 1000): void {
    this.#closing = true;
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code, 0);
    this.frame(8, b);
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) return;
      if (b[1] & 0x80) throw new Error('server frames must not be masked');
      let len = b[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + len) return;
      const opcode = b[0] & 0x0f;
      const payload = Buffer.from(b.subarray(at, at + len));
      this.#buf = b.subarray(at + len);
      if (opcode === 8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.emit('closeFrame', this.closeCode);
        // The closing handshake: echo the code; the server then ends the TCP connection.
        if (!this.#closing) {
          this.#closing = true;
          this.frame(8, payload.subarray(0, 2));
        }
      } else if (opcode === 10) this.emit('pong', payload);
      else this.emit('message', payload, opcode === 2);
    }
  }
}

export async function wsConnect(url: string, protocols: string[], extra: Record<string, string> = {}): Promise<WsClient> {
  const key = randomBytes(16).toString('base64');
  const a = await httpUpgrade(
    url,
    {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': key,
      ...(protocols.length ? { 'Sec-WebSocket-Protocol': protocols.join(', ') } : {}),
      ...extra,
    },
    'GET',
  );
  if (a.status !== 101) throw Object.assign(new Error(`upgrade answered ${a.status}: ${a.body}`), { status: a.status, body: a.body });
  const expected = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  if (a.headers['sec-websocket-accept'] !== expected) throw new Error('bad Sec-WebSocket-Accept');
  return new WsClient(a.socket, a.headers['sec-websocket-protocol'] ?? '', a.rest);
}

/** A remote command over a WebSocket (channel byte prefixes; v5 closes stdin with [255, 0]). */
export async function wsCommand(url: string, o: CommandOptions = {}): Promise<CommandResult & { closeCode?: number }> {
  const ws = await wsConnect(url, [o.protocol ?? 'v5.channel.k8s.io']);
  const out: Buffer[][] = [[], [], [], []];
  const ended = new Promise<number | undefined>((resolve) => ws.once('close', resolve));
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  ws.on('message', (data: Buffer) => {
    ready();
    if (data.length > 1 && data[0] < 4) out[data[0]].push(data.subarray(1));
  });
  await readyP;
  for (const size of o.resize ?? []) ws.send(4, JSON.stringify(size));
  if (o.stdin !== undefined) ws.send(0, o.stdin);
  if (!o.keepStdinOpen && ws.protocol === 'v5.channel.k8s.io' && o.stdin !== undefined) ws.frame(2, Buffer.from([255, 0]));
  const closeCode = await ended;
  return { stdout: Buffer.concat(out[1]).toString(), stderr: Buffer.concat(out[2]).toString(), error: Buffer.concat(out[3]).toString(), closeCode };
}
