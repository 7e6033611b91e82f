import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Ctx } from '../../core/context.ts';
import { DEFAULT_NAMESPACE } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Schema } from '../../core/schema.ts';
import { createHttpServer, type HttpExchange } from '../http/exchange.ts';
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
  /** The parsed JSON body, checked against `schema` (a JSON object at least); undefined when empty, InvalidArgument (in dockerd's words) when malformed or of the wrong shape. */
  json<T = unknown>(schema?: Schema): Promise<T>;
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

/** What answers while the engine recovers: a client's first probe of the daemon. */
const ANSWERED_BEFORE_READY = new Set(['/_ping', '/version']);

interface DockerServerOptions {
  router: DockerRouter;
  log: Logger;
  shutdown: AbortSignal;
  /**
   * The end of the engine's recovery at start: every route but `/_ping` and
   * `/version` waits for it, and answers its error (Unavailable) if recovery
   * failed. Absent: the engine is there.
   */
  ready?: Promise<void>;
}

export function createDockerServer(opts: DockerServerOptions): http.Server {
  return createHttpServer((ex) => void handle(opts, ex));
}

async function handle(opts: DockerServerOptions, ex: HttpExchange): Promise<void> {
  const req = ex.req;
  const url = new URL(req.url ?? '/', 'http://berth');
  const signal = AbortSignal.any([opts.shutdown, ex.gone]);
  const log = opts.log.child({ api: 'docker', method: req.method, path: url.pathname });
  const ctx: Ctx = { signal, log, namespace: DEFAULT_NAMESPACE };
  const isHead = req.method === 'HEAD';
  try {
    const { version, path } = splitVersion(url.pathname);
    const method = isHead && path === '/_ping' ? 'GET' : (req.method ?? 'GET');
    const m = opts.router.match(method, path);
    if (!m) throw berthError('Unimplemented', `${req.method} ${path} is not implemented by berth`);
    if (!ANSWERED_BEFORE_READY.has(path)) await opts.ready;
    const dreq: DockerRequest = {
      ctx,
      params: m.params,
      query: url.searchParams,
      raw: req,
      version,
      json: <T>(schema?: Schema) => ex.json<T>(schema, 'docker'),
      discardBody: () => ex.discardBody(),
      stream: (contentType, headers = {}) => ex.stream(200, { ...commonHeaders, ...headers, 'content-type': contentType }),
      hijack: (contentType) => {
        // A client that did not ask to upgrade reads the stream as the body.
        if (ex.res) return ex.hijackResponse(200, { ...commonHeaders, 'content-type': contentType });
        return ex.upgrade('UPGRADED', { 'content-type': contentType, connection: 'Upgrade', upgrade: 'tcp', 'api-version': API_VERSION });
      },
    };
    const reply = await m.handler(dreq);
    if (ex.taken) return;
    send(ex, reply?.body === undefined ? (reply?.status ?? 204) : (reply.status ?? 200), reply?.body, isHead, reply?.headers);
  } catch (err) {
    const kind = kindOf(err);
    if (kind === 'Internal' || kind === 'Unknown') log.error('request failed', { err });
    const status = dockerStatusOf(kind);
    send(ex, status, status === 304 ? undefined : { message: err instanceof Error ? err.message : String(err) }, isHead);
  } finally {
    ex.release();
  }
}

/** An answer in docker's shape; after a takeover only the connection can be cut, which the exchange does. */
function send(ex: HttpExchange, status: number, body: unknown, head: boolean, extra: Record<string, string> = {}): void {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { ...commonHeaders, ...extra };
  if (text) headers['content-type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  if (ex.taken) {
    if (!ex.res?.writableEnded) (ex.res ?? ex.socket)?.destroy();
    return;
  }
  ex.answer(status, headers, text, { head });
}
