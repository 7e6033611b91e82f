import net from 'node:net';
import { PassThrough, type Duplex, type Readable } from 'node:stream';

/**
 * A minimal HTTP/1.1 client over a unix socket, for the CLI. node:http costs
 * about 40 ms to load (it pulls in undici), which is more than the whole
 * budget of `berth images`; this speaks just what the native API needs:
 * one request per connection, Content-Length or chunked bodies both ways,
 * and the 101 upgrade for attach/exec.
 */
export interface Http1Request {
  socketPath: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** A streamed request body, sent chunked. */
  upload?: Readable;
  signal?: AbortSignal;
}

export interface Http1Response {
  statusCode: number;
  headers: Record<string, string>;
  /** The body, de-chunked. For a 101 it is the raw upgraded socket, paused until read. */
  body: Readable;
  socket: Duplex;
}

export function http1(req: Http1Request): Promise<Http1Response> {
  return new Promise((resolve, reject) => {
    const aborted = () => Object.assign(new Error('request aborted'), { name: 'AbortError' });
    // Refused before a socket exists: a socket destroyed before its error listener is attached would throw.
    if (req.signal?.aborted) return reject(aborted());
    const sock = net.connect(req.socketPath);
    let settled = false;
    const fail = (err: Error) => {
      if (!settled) {
        settled = true;
        reject(err);
      }
    };
    sock.once('error', fail);
    const onAbort = () => sock.destroy(aborted());
    req.signal?.addEventListener('abort', onAbort, { once: true });
    // Written at once: the socket queues it until connected, which saves a turn of the event loop.
    {
      const headers: Record<string, string> = { host: 'berth', ...req.headers };
      // An upload stays keep-alive: berthd may answer (an error) before it has read the upload, and on a
      // connection to be closed it would close while we still write, so we would meet EPIPE, not the answer.
      // Kept alive, the server reads the rest and drops it; we close once the answer is read.
      if (!('connection' in headers)) headers.connection = req.upload ? 'keep-alive' : 'close';
      if (req.upload) headers['transfer-encoding'] = 'chunked';
      else headers['content-length'] = String(req.body ? Buffer.byteLength(req.body) : 0);
      let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      sock.write(head + '\r\n');
      if (req.upload) {
        const up = req.upload;
        up.on('data', (chunk: Buffer) => {
          if (chunk.length === 0) return;
          sock.write(`${chunk.length.toString(16)}\r\n`);
          sock.write(chunk);
          if (!sock.write('\r\n')) {
            up.pause();
            sock.once('drain', () => up.resume());
          }
        });
        up.once('end', () => sock.write('0\r\n\r\n'));
        up.once('error', (err) => sock.destroy(err));
      } else if (req.body) sock.write(req.body);
    }

    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const rest = buf.subarray(end + 4);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      if (!status) return fail(new Error(`malformed response from berthd: ${lines[0].slice(0, 80)}`));
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const statusCode = Number(status[1]);
      settled = true;
      sock.off('error', fail);
      // An abort (the user of a hosted command went away) errors the streams below; whoever
      // still reads them sees it, and nobody else may crash berthd over it.
      if (req.signal) sock.on('error', ignore);
      if (statusCode === 101) {
        // Hold the bytes until the caller reads: a flowing socket with no listener drops them.
        sock.pause();
        if (rest.length) sock.unshift(rest);
        return resolve({ statusCode, headers, body: sock, socket: sock });
      }
      const body = new PassThrough();
      if (req.signal) body.on('error', ignore);
      sock.on('error', (err) => body.destroy(err));
      if (headers['transfer-encoding']?.includes('chunked')) dechunk(sock, rest, body);
      else {
        const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : Infinity;
        copyLength(sock, rest, body, len);
      }
      resolve({ statusCode, headers, body, socket: sock });
    };
    sock.on('data', onData);
    sock.once('close', () => {
      req.signal?.removeEventListener('abort', onAbort);
      fail(new Error('berthd closed the connection before answering'));
    });
  });
}

function ignore(): void {}

function copyLength(sock: net.Socket, first: Buffer, out: PassThrough, length: number): void {
  let left = length;
  const push = (chunk: Buffer) => {
    if (left <= 0) return;
    const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= part.length;
    if (!out.write(part)) {
      sock.pause();
      out.once('drain', () => sock.resume());
    }
    if (left <= 0) {
      out.end();
      sock.destroy();
    }
  };
  if (length === 0) {
    out.end();
    sock.destroy();
    return;
  }
  if (first.length) push(first);
  sock.on('data', push);
  sock.once('end', () => out.end());
}

function dechunk(sock: net.Socket, first: Buffer, out: PassThrough): void {
  let buf: Buffer = first;
  let state: 'size' | 'data' | 'crlf' | 'done' = 'size';
  let need = 0;
  const emit = (part: Buffer) => {
    if (part.length && !out.write(part)) {
      sock.pause();
      out.once('drain', () => sock.resume());
    }
  };
  const pump = () => {
    for (;;) {
      if (state === 'size') {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const size = parseInt(buf.subarray(0, nl).toString('latin1'), 16);
        buf = buf.subarray(nl + 2);
        if (Number.isNaN(size)) {
          state = 'done';
          out.destroy(new Error('malformed chunked body from berthd'));
          return;
        }
        if (size === 0) {
          state = 'done';
          out.end();
          sock.destroy();
          return;
        }
        need = size;
        state = 'data';
      } else if (state === 'data') {
        if (buf.length === 0) return;
        const part = buf.subarray(0, Math.min(need, buf.length));
        buf = buf.subarray(part.length);
        need -= part.length;
        emit(part);
        if (need === 0) state = 'crlf';
      } else if (state === 'crlf') {
        if (buf.length < 2) return;
        buf = buf.subarray(2);
        state = 'size';
      } else return;
    }
  };
  pump();
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    pump();
  });
  sock.once('end', () => {
    if (state !== 'done') out.destroy(new Error('berthd closed the connection mid-response'));
  });
}
