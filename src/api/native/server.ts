import http from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../../core/context.ts';
import { DEFAULT_NAMESPACE, validateNamespace } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { readJson, readUpgradeJson } from '../http/body.ts';
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
  /** The parsed JSON body (undefined when there is none); InvalidArgument if malformed. */
  json<T = unknown>(): Promise<T>;
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
  const server = http.createServer({ keepAlive: true });
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse | undefined, socket?: Duplex, head?: Buffer) => {
    void handle(opts, req, res, socket, head);
  };
  server.on('request', (req, res) => onRequest(req, res));
  server.on('upgrade', (req, socket, head) => onRequest(req, undefined, socket, head));
  return server;
}

async function handle(opts: ServerOptions, req: http.IncomingMessage, res: http.ServerResponse | undefined, socket?: Duplex, head?: Buffer): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://berth');
  const ns = (req.headers[NAMESPACE_HEADER] as string | undefined) ?? DEFAULT_NAMESPACE;
  const requestAbort = new AbortController();
  const onClose = () => requestAbort.abort(berthError('Canceled', 'client went away'));
  (res ?? socket)?.once('close', onClose);
  const signal = AbortSignal.any([opts.shutdown, requestAbort.signal]);
  const log = opts.log.child({ method: req.method, path: url.pathname, namespace: ns });
  const ctx: Ctx = { signal, log, namespace: ns };
  let streaming: NdjsonWriter | undefined;
  let upgraded = false;
  let rawResponse = false;
  /** Bytes after the head not yet given to the handler (an upgrade request's body, then its stream). */
  let pending = head;

  const sendError = (err: unknown) => {
    const kind = kindOf(err);
    const message = err instanceof Error ? err.message : String(err);
    if (kind === 'Internal' || kind === 'Unknown') log.error('request failed', { err });
    if (upgraded) return;
    if (rawResponse && res?.headersSent) return void res.destroy();
    if (streaming) return streaming.fail(err);
    if (res && !res.headersSent) {
      const body = errorBody(kind, message, err);
      res.writeHead(httpStatusOf(kind), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else if (socket && !socket.destroyed) {
      const body = errorBody(kind, message, err);
      socket.end(`HTTP/1.1 ${httpStatusOf(kind)} Error\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    }
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
      json: async <T>() => {
        if (!socket) return readJson<T>(req);
        const body = await readUpgradeJson<T>(req, socket, pending);
        pending = undefined;
        return body;
      },
      ndjson: () => {
        if (!res) throw berthError('InvalidArgument', 'this endpoint cannot stream on an upgraded connection');
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.flushHeaders();
        streaming = ndjsonWriter(res, signal);
        return streaming;
      },
      response: () => {
        if (!res) throw berthError('InvalidArgument', 'this endpoint cannot answer on an upgraded connection');
        rawResponse = true;
        return res;
      },
      upgrade: (headers = {}) => {
        if (!socket) throw berthError('InvalidArgument', 'this endpoint needs Connection: Upgrade');
        let extra = '';
        for (const [k, v] of Object.entries(headers)) extra += `${k}: ${v.replace(/[\r\n]/g, ' ')}\r\n`;
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${UPGRADE_PROTOCOL}\r\n${extra}\r\n`);
        if (pending && pending.length) socket.unshift(pending);
        upgraded = true;
        return socket;
      },
    };
    const result = await m.handler(apiReq);
    if (upgraded || streaming || rawResponse) return;
    if (!res) throw berthError('InvalidArgument', 'endpoint does not upgrade');
    if (result === undefined) {
      res.writeHead(204).end();
    } else {
      const body = JSON.stringify(result);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  } catch (err) {
    sendError(err);
  } finally {
    // An upgraded connection outlives its handler: its signal must still abort
    // when the client leaves, or everything listening on it stays alive.
    if (!upgraded) (res ?? socket)?.off('close', onClose);
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
