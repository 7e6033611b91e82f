import type http from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../../core/context.ts';
import { DEFAULT_NAMESPACE, validateNamespace } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Schema } from '../../core/schema.ts';
import { createHttpServer, type HttpExchange } from '../http/exchange.ts';
import { HttpRouter } from '../http/router.ts';
import { writeStreamed } from '../http/write.ts';
import { httpStatusOf, NAMESPACE_HEADER, UPGRADE_PROTOCOL } from './protocol.ts';

/**
 * The native API server: a tiny router over node:http. Route modules
 * (routes-images.ts, routes-containers.ts, ...) register handlers; handlers
 * only validate, call a core service and convert the result.
 *
 * A handler returns a JSON value (sent with 200), or uses `req.ndjson()` to
 * stream lines, or `req.upgrade()` to take over the socket.
 */
export interface ApiRequest {
  readonly ctx: Ctx;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  readonly raw: http.IncomingMessage;
  /** The parsed JSON body (undefined when there is none), checked against `schema` (a JSON object at least); InvalidArgument if malformed or of the wrong shape. */
  json<T = unknown>(schema?: Schema): Promise<T>;
  /** Switch the response to NDJSON; call `write` per line and `end` when done. */
  ndjson(): NdjsonWriter;
  /** Upgrade the connection and hand over the raw socket (for attach/exec); `headers` go with the 101. */
  upgrade(headers?: Record<string, string>): Duplex;
  /** Take over the response to stream raw bytes (downloads such as `save`); the handler ends it. */
  response(): http.ServerResponse;
  /** The request body as a raw stream (uploads such as `load` and `import`). */
  readonly body: http.IncomingMessage;
}

export interface NdjsonWriter {
  write(obj: unknown): Promise<void>;
  end(): void;
  fail(err: unknown): void;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

export type Handler = (req: ApiRequest) => Promise<unknown>;

/** The native API's router: the shared one, typed with its handlers. */
export class Router extends HttpRouter<Handler> {}

export interface ServerOptions {
  router: Router;
  log: Logger;
  /** Aborted when the daemon shuts down; every request's signal follows it. */
  shutdown: AbortSignal;
}

export function createApiServer(opts: ServerOptions): http.Server {
  return createHttpServer((ex) => void handle(opts, ex));
}

async function handle(opts: ServerOptions, ex: HttpExchange): Promise<void> {
  const req = ex.req;
  const res = ex.res;
  const url = new URL(req.url ?? '/', 'http://berth');
  const ns = (req.headers[NAMESPACE_HEADER] as string | undefined) ?? DEFAULT_NAMESPACE;
  const signal = AbortSignal.any([opts.shutdown, ex.gone]);
  const log = opts.log.child({ method: req.method, path: url.pathname, namespace: ns });
  const ctx: Ctx = { signal, log, namespace: ns };
  let streaming: NdjsonWriter | undefined;
  let rawResponse = false;

  const sendError = (err: unknown) => {
    const kind = kindOf(err);
    const message = err instanceof Error ? err.message : String(err);
    if (kind === 'Internal' || kind === 'Unknown') log.error('request failed', { err });
    if (streaming) return streaming.fail(err);
    if (rawResponse && res?.headersSent) return void res.destroy();
    // A handler that failed after taking the connection over leaves it to nobody.
    if (ex.taken) return void ex.socket?.destroy();
    ex.answer(httpStatusOf(kind), { 'content-type': 'application/json' }, errorBody(kind, message, err));
  };

  try {
    if (!validateNamespace(ns)) throw berthError('InvalidArgument', `invalid namespace "${ns}"`);
    const m = opts.router.match(req.method ?? 'GET', url.pathname);
    if (!m) throw berthError('NotFound', `no such endpoint: ${req.method} ${url.pathname}`);
    const apiReq: ApiRequest = {
      ctx,
      params: m.params,
      query: url.searchParams,
      raw: req,
      body: req,
      json: <T>(schema?: Schema) => ex.json<T>(schema, 'plain'),
      ndjson: () => {
        streaming = ndjsonWriter(ex.stream(200, { 'content-type': 'application/x-ndjson' }), signal);
        return streaming;
      },
      response: () => {
        if (!res) throw berthError('InvalidArgument', 'this endpoint cannot answer on an upgraded connection');
        rawResponse = true;
        return res;
      },
      upgrade: (headers = {}) => ex.upgrade('Switching Protocols', { connection: 'Upgrade', upgrade: UPGRADE_PROTOCOL, ...headers }),
    };
    const result = await m.handler(apiReq);
    if (ex.taken || rawResponse) return;
    if (!res) throw berthError('InvalidArgument', 'endpoint does not upgrade');
    if (result === undefined) ex.answer(204, {});
    else ex.answer(200, { 'content-type': 'application/json' }, JSON.stringify(result));
  } catch (err) {
    sendError(err);
  } finally {
    ex.release();
  }
}

/** The error body of the native API; a failed start also carries docker's exit code. */
function errorBody(kind: string, message: string, err: unknown): string {
  const exitCode = (err as { exitCode?: unknown } | undefined)?.exitCode;
  return JSON.stringify(typeof exitCode === 'number' ? { kind, message, exitCode } : { kind, message });
}

function ndjsonWriter(res: http.ServerResponse, signal: AbortSignal): NdjsonWriter {
  return {
    signal,
    async write(obj) {
      await writeStreamed(res, JSON.stringify(obj) + '\n');
    },
    end() {
      res.end();
    },
    fail(err) {
      const kind = kindOf(err);
      const message = err instanceof Error ? err.message : String(err);
      if (!res.destroyed) res.end(JSON.stringify({ error: { kind, message } }) + '\n');
    },
  };
}

/** A tar (save, export, cp) as the whole response; a failure midway can only cut the connection, the status being sent. */
export async function sendTar(req: ApiRequest, tar: Readable): Promise<void> {
  const res = req.response();
  res.writeHead(200, { 'content-type': 'application/x-tar' });
  await pipeline(tar, res, { signal: req.ctx.signal }).catch((err: unknown) => {
    req.ctx.log.warn('tar stream failed', { err });
    res.destroy(err as Error);
  });
}

/**
 * An NDJSON answer of the events `fn` emits, then its end, or an error line
 * if `fn` fails. Events go out in order, each after the one before it; a
 * slow or gone client slows or drops the stream, never the work (a pull, a
 * build), which does not wait for it.
 */
export async function streamEvents<E>(req: ApiRequest, fn: (emit: (ev: E) => Promise<void>) => Promise<void>): Promise<undefined> {
  const out = req.ndjson();
  let pending = Promise.resolve();
  const emit = (ev: E): Promise<void> => {
    pending = pending.then(() => out.write(ev)).catch(() => {});
    return pending;
  };
  try {
    await fn(emit);
    await pending;
    out.end();
  } catch (err) {
    await pending;
    out.fail(err);
  }
  return undefined;
}
