import http from 'node:http';
import { Duplex } from 'node:stream';
import type { Ctx } from '../../core/context.ts';
import { DEFAULT_NAMESPACE } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { readJson, readUpgradeJson } from '../http/body.ts';
import { HttpRouter } from '../http/router.ts';
import { dockerStatusOf } from './errors.ts';
import { API_VERSION, splitVersion } from './version.ts';

/**
 * The Docker Engine API server: HTTP/1.1 on a unix socket, docker's paths
 * (with or without a `/v1.NN` prefix), JSON bodies, errors as
 * `{"message": "..."}`. Every request works in the berth namespace
 * `default`, so what the docker CLI makes, `berth ps` shows.
 *
 * A handler validates, calls a service and converts. It returns a `Reply`
 * (a JSON body with its status; undefined body means 204), or takes the
 * connection over: `stream()` for a streamed 200 (pull progress, logs),
 * `hijack()` for attach and exec (docker's `Upgrade: tcp`).
 */
export interface DockerRequest {
  readonly ctx: Ctx;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  readonly raw: http.IncomingMessage;
  /** The API version the client asked for. */
  readonly version: string;
  /** The parsed JSON body; undefined when empty, InvalidArgument when malformed. */
  json<T = unknown>(): Promise<T>;
  /** Read the body and drop it, whatever it holds: dockerd ignores an attach's (dockerode sends its options there). */
  discardBody(): Promise<void>;
  /** Answer 200 with `contentType` (and `headers`) and stream the body; the handler ends it. */
  stream(contentType: string, headers?: Record<string, string>): http.ServerResponse;
  /** Take the connection over (101 UPGRADED, or 200 for a client that did not ask to upgrade). */
  hijack(contentType: string): Duplex;
}

export interface Reply {
  status?: number;
  /** JSON, or a string sent as text/plain. */
  body?: unknown;
  headers?: Record<string, string>;
}

export type DockerHandler = (req: DockerRequest) => Promise<Reply | undefined>;

export class DockerRouter extends HttpRouter<DockerHandler> {}

export const ok = (body: unknown, status = 200): Reply => ({ status, body });

/** Query flags as docker's server reads them (`1`, `true`). */
export const flag = (v: string | null): boolean => v === '1' || v === 'true' || v === 'True';

/** Headers on every answer, as dockerd sends them. */
export const commonHeaders = { 'api-version': API_VERSION, ostype: 'linux', server: `berth/${process.env.npm_package_version ?? '0.1.0'} (linux)` };

export function createDockerServer(opts: { router: DockerRouter; log: Logger; shutdown: AbortSignal }): http.Server {
  const server = http.createServer({ keepAlive: true });
  server.on('request', (req, res) => void handle(opts, req, res));
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => void handle(opts, req, undefined, socket, head));
  return server;
}

async function handle(opts: { router: DockerRouter; log: Logger; shutdown: AbortSignal }, req: http.IncomingMessage, res: http.ServerResponse | undefined, socket?: Duplex, head?: Buffer): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://berth');
  const requestAbort = new AbortController();
  const onClose = () => requestAbort.abort(berthError('Canceled', 'client went away'));
  (res ?? socket)?.once('close', onClose);
  const signal = AbortSignal.any([opts.shutdown, requestAbort.signal]);
  const log = opts.log.child({ api: 'docker', method: req.method, path: url.pathname });
  const ctx: Ctx = { signal, log, namespace: DEFAULT_NAMESPACE };
  let taken = false;
  let pending = head;
  try {
    const { version, path } = splitVersion(url.pathname);
    const method = req.method === 'HEAD' && path === '/_ping' ? 'GET' : (req.method ?? 'GET');
    const m = opts.router.match(method, path);
    if (!m) throw berthError('Unimplemented', `${req.method} ${path} is not implemented by berth`);
    const dreq: DockerRequest = {
      ctx,
      params: m.params,
      query: url.searchParams,
      raw: req,
      version,
      json: async <T>() => {
        if (!socket) return readJson<T>(req);
        const body = await readUpgradeJson<T>(req, socket, pending);
        pending = undefined;
        return body;
      },
      discardBody: async () => {
        if (!socket) {
          req.resume();
          return;
        }
        try {
          await readUpgradeJson(req, socket, pending);
        } catch (err) {
          if (kindOf(err) !== 'InvalidArgument' || !/not valid JSON/.test((err as Error).message)) throw err;
        }
        pending = undefined;
      },
      stream: (contentType, headers = {}) => {
        if (!res) throw berthError('InvalidArgument', 'this endpoint cannot stream on an upgraded connection');
        taken = true;
        res.writeHead(200, { ...commonHeaders, ...headers, 'content-type': contentType });
        res.flushHeaders();
        return res;
      },
      hijack: (contentType) => {
        taken = true;
        if (res) {
          // A client that did not ask to upgrade reads the stream as the body.
          res.writeHead(200, { ...commonHeaders, 'content-type': contentType });
          res.flushHeaders();
          return Duplex.from({ readable: req, writable: res });
        }
        socket!.write(`HTTP/1.1 101 UPGRADED\r\ncontent-type: ${contentType}\r\nconnection: Upgrade\r\nupgrade: tcp\r\napi-version: ${API_VERSION}\r\n\r\n`);
        if (pending?.length) socket!.unshift(pending);
        return socket!;
      },
    };
    const reply = await m.handler(dreq);
    if (taken) return;
    send(res, socket, reply?.body === undefined ? (reply?.status ?? 204) : (reply.status ?? 200), reply?.body, req.method === 'HEAD', reply?.headers);
  } catch (err) {
    const kind = kindOf(err);
    if (kind === 'Internal' || kind === 'Unknown') log.error('request failed', { err });
    if (taken) {
      if (res && !res.writableEnded) res.destroy();
      else socket?.destroy();
      return;
    }
    const status = dockerStatusOf(kind);
    send(res, socket, status, status === 304 ? undefined : { message: err instanceof Error ? err.message : String(err) }, req.method === 'HEAD');
  } finally {
    // A hijacked connection outlives its handler: its signal must still abort when the client leaves.
    if (!taken) (res ?? socket)?.off('close', onClose);
  }
}

function send(res: http.ServerResponse | undefined, socket: Duplex | undefined, status: number, body: unknown, head: boolean, extra: Record<string, string> = {}): void {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  if (res) {
    if (res.headersSent) return void res.destroy();
    const headers: Record<string, string | number> = { ...commonHeaders, ...extra };
    if (text) Object.assign(headers, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
    res.writeHead(status, headers);
    res.end(head ? undefined : text);
  } else if (socket && !socket.destroyed) {
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  }
}
