import type { Duplex, Readable } from 'node:stream';
import { http1, type Http1Response } from './http1.ts';
import type { ErrorKind } from '../../core/errors.ts';
import { BerthError, ErrorKinds, berthError } from '../../core/errors.ts';
import { NAMESPACE_HEADER, UPGRADE_PROTOCOL } from './protocol.ts';

// What the CLI needs of `POST /containers/run`'s protocol (the CLI imports only this client).
export { CONTAINER_ID_HEADER, RunStreams, WARNINGS_HEADER } from './protocol.ts';

/**
 * The client of berth's native API, used by the CLI. It imports nothing but
 * core/ and protocol.ts so the CLI starts fast. Errors come back as
 * BerthError with the server's kind.
 */
export interface ClientOptions {
  /** unix://PATH or a plain path. */
  host: string;
  namespace: string;
  /** Aborts every request of this client (a hosted CLI command whose user went away). */
  signal?: AbortSignal;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | string[]>;
  body?: unknown;
  /** A raw request body (uploads); sent as application/octet-stream. */
  upload?: Readable;
  signal?: AbortSignal;
}

export class ApiClient {
  readonly socketPath: string;
  readonly namespace: string;
  readonly #signal: AbortSignal | undefined;

  constructor(opts: ClientOptions) {
    this.#signal = opts.signal;
    this.socketPath = opts.host.startsWith('unix://') ? opts.host.slice('unix://'.length) : opts.host;
    if (!this.socketPath) throw berthError('InvalidArgument', `invalid host "${opts.host}": expected unix:///path/to/socket`);
    this.namespace = opts.namespace;
  }

  /** A JSON request; resolves to the parsed body (undefined for 204). */
  async call<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.#send(method, path, opts);
    const text = await readText(res.body);
    if (res.statusCode >= 300) throw toError(res.statusCode, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** An NDJSON request: yields each line's object; a trailing error line throws. */
  async *stream<T = unknown>(method: string, path: string, opts: RequestOptions = {}): AsyncGenerator<T> {
    const res = await this.#send(method, path, opts);
    if (res.statusCode >= 300) throw toError(res.statusCode, await readText(res.body));
    let buf = '';
    for await (const chunk of res.body) {
      buf += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const obj = JSON.parse(line) as { error?: { kind: ErrorKind; message: string } };
        if (obj && obj.error && typeof obj.error === 'object' && 'kind' in obj.error) {
          throw new BerthError(knownKind(obj.error.kind), obj.error.message);
        }
        yield obj as T;
      }
    }
  }

  /** A raw response body (downloads such as `save`); throws on an error status. */
  async raw(method: string, path: string, opts: RequestOptions = {}): Promise<Readable> {
    const res = await this.#send(method, path, opts);
    if (res.statusCode >= 300) throw toError(res.statusCode, await readText(res.body));
    return res.body;
  }

  /** Upgrade the connection (attach, exec) and return the raw duplex socket. */
  async upgrade(method: string, path: string, opts: RequestOptions = {}): Promise<Duplex> {
    return (await this.upgradeWithHeaders(method, path, opts)).socket;
  }

  /** Upgrade the connection; the raw duplex socket and the headers of the 101 answer. */
  async upgradeWithHeaders(method: string, path: string, opts: RequestOptions = {}): Promise<{ socket: Duplex; headers: Record<string, string> }> {
    const res = await this.#send(method, path, opts, { connection: 'Upgrade', upgrade: UPGRADE_PROTOCOL });
    if (res.statusCode !== 101) throw toError(res.statusCode, await readText(res.body));
    return { socket: res.socket, headers: res.headers };
  }

  async #send(method: string, path: string, opts: RequestOptions, extra: Record<string, string> = {}): Promise<Http1Response> {
    const headers: Record<string, string> = { [NAMESPACE_HEADER]: this.namespace, ...extra };
    let body: string | undefined;
    if (opts.upload) headers['content-type'] = 'application/octet-stream';
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    try {
      return await http1({ socketPath: this.socketPath, method, path: withQuery(path, opts.query), headers, body, upload: opts.upload, signal: this.#signalFor(opts.signal) });
    } catch (err) {
      throw connectError(this.socketPath, err as Error);
    }
  }

  #signalFor(signal: AbortSignal | undefined): AbortSignal | undefined {
    if (!signal || !this.#signal) return signal ?? this.#signal;
    return AbortSignal.any([signal, this.#signal]);
  }
}

function withQuery(path: string, query: RequestOptions['query']): string {
  if (!query) return path;
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) sp.append(k, item);
    else sp.set(k, String(v));
  }
  const s = sp.toString();
  return s ? `${path}?${s}` : path;
}

async function readText(res: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function knownKind(kind: string): ErrorKind {
  return (ErrorKinds as readonly string[]).includes(kind) ? (kind as ErrorKind) : 'Unknown';
}

function toError(status: number, text: string): BerthError {
  try {
    const body = JSON.parse(text) as { kind?: string; message?: string; exitCode?: unknown };
    if (body && typeof body.message === 'string') {
      const err = new BerthError(knownKind(body.kind ?? 'Unknown'), body.message);
      // A container that failed to start: docker's exit code for it (125, 126, 127).
      return typeof body.exitCode === 'number' ? Object.assign(err, { exitCode: body.exitCode }) : err;
    }
  } catch {
    // fall through: not our error body
  }
  return new BerthError('Unknown', `unexpected response ${status}: ${text.slice(0, 200)}`);
}

function connectError(socketPath: string, err: Error): BerthError {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return berthError('Unavailable', `cannot connect to berthd at unix://${socketPath}: is the daemon running?`, err);
  }
  if (code === 'EACCES') return berthError('PermissionDenied', `permission denied on unix://${socketPath}`, err);
  if (err.name === 'AbortError') return berthError('Canceled', 'request canceled', err);
  return berthError('Unavailable', `berthd at unix://${socketPath}: ${err.message}`, err);
}
