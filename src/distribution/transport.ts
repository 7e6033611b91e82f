import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, Agent } from 'node:http';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { httpsModule, tlsModule } from '../core/builtins.ts';
import { berthError, isBerthError } from '../core/errors.ts';
import type { RegistryEndpoint } from './hosts.ts';

// node:http's ESM facade reads every export, and its lazy WebSocket,
// MessageEvent and CloseEvent load undici, which berthd never uses (~2 MiB
// of its RSS; 11 in a bare Node). process.getBuiltinModule reads no exports.
const http = process.getBuiltinModule('node:http');

/**
 * One HTTP attempt to a registry endpoint over node:http/https with
 * keep-alive agents (one per TLS setting, so skip_verify and custom CAs
 * work). No retries, auth or redirects here: see requester.ts.
 *
 * Errors: Unavailable naming the host for connection failures and timeouts
 * (retryable: `retryable(err)`), Unknown for a peer that does not speak
 * HTTP, Canceled when ctx.signal aborts.
 */
export interface HttpRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  headers?: Record<string, string>;
  /** A Buffer can be re-sent on retry; a stream cannot. */
  body?: Buffer | Readable;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: string;
}

const RETRYABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'ENOTFOUND',
]);
const TLS_MISMATCH_CODES = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

const retryableBrand = Symbol.for('berth.distribution.retryable');

/** Mark an error as worth another attempt (connection errors, 5xx, 429, stalls). */
export function markRetryable<E extends Error>(err: E): E {
  (err as unknown as Record<symbol, boolean>)[retryableBrand] = true;
  return err;
}

export function retryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[retryableBrand] === true;
}

export const hostOfUrl = (url: string): string => new URL(url).host;

/** Turn a socket-level error into a berth error naming the host. */
export function networkError(err: unknown, url: string, signal: AbortSignal): Error {
  if (signal.aborted) return berthError('Canceled', `${hostOfUrl(url)}: request canceled`, err);
  if (isBerthError(err)) return err;
  const code = (err as { code?: string }).code ?? '';
  const msg = (err as Error).message ?? String(err);
  const host = hostOfUrl(url);
  if (code.startsWith('HPE_')) return berthError('Unknown', `registry ${host}: invalid HTTP response (${msg})`, err);
  if (TLS_MISMATCH_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /certificate|self[- ]signed/i.test(msg)) {
    return berthError('Unavailable', `registry ${host}: TLS handshake failed: ${msg}`, err);
  }
  const e = berthError('Unavailable', `registry ${host} is unavailable: ${msg}`, err);
  return RETRYABLE_CODES.has(code) || /socket hang up|timed out/i.test(msg) ? markRetryable(e) : e;
}

export class Transport {
  private readonly agents = new Map<string, Agent>();
  /** Loopback hosts found to speak plain HTTP. */
  private readonly plainHosts = new Set<string>();
  private readonly connectTimeoutMs: number;
  private readonly userAgent: string;

  constructor(opts: { connectTimeoutMs: number; userAgent?: string }) {
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.userAgent = opts.userAgent ?? 'berth';
  }

  private agentFor(url: URL, ep: RegistryEndpoint | undefined): Agent {
    const tls = url.protocol === 'https:';
    const key = tls ? `https|${ep?.skipVerify ?? false}|${(ep?.ca ?? []).join(',')}` : 'http';
    let agent = this.agents.get(key);
    if (!agent) {
      if (tls) {
        let ca: string[] | undefined;
        if (ep && ep.ca.length > 0) {
          // Custom CAs add to the default store rather than replacing it, as containerd does.
          ca = [...ep.ca.map((f) => readCa(f)), ...tlsModule().rootCertificates];
        }
        agent = new (httpsModule().Agent)({ keepAlive: true, maxSockets: 16, rejectUnauthorized: !(ep?.skipVerify ?? false), ca });
      } else {
        agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      }
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** The URL to use: a loopback endpoint that fell back to plain HTTP keeps using it. */
  effectiveUrl(url: string): string {
    const u = new URL(url);
    if (u.protocol === 'https:' && this.plainHosts.has(u.host)) u.protocol = 'http:';
    return u.toString();
  }

  /** One attempt; resolves when the response headers arrive. */
  async send(ctx: Ctx, req: HttpRequest, ep?: RegistryEndpoint): Promise<HttpResponse> {
    const url = this.effectiveUrl(req.url);
    try {
      return await this.sendOnce(ctx, { ...req, url }, ep);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const canFallBack = ep?.plainHttpFallback && url.startsWith('https:') && new URL(url).host === new URL(ep.url).host;
      if (canFallBack && !ctx.signal.aborted && (TLS_MISMATCH_CODES.has(code) || code.startsWith('ERR_SSL') || code === 'ECONNRESET')) {
        this.plainHosts.add(new URL(url).host);
        const plain = this.effectiveUrl(url);
        try {
          return await this.sendOnce(ctx, { ...req, url: plain }, ep);
        } catch (err2) {
          throw networkError(err2, plain, ctx.signal);
        }
      }
      throw networkError(err, url, ctx.signal);
    }
  }

  private sendOnce(ctx: Ctx, req: HttpRequest, ep?: RegistryEndpoint): Promise<HttpResponse> {
    const u = new URL(req.url);
    const mod = u.protocol === 'https:' ? httpsModule() : http;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...ep?.header, ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    return new Promise<HttpResponse>((resolve, reject) => {
      let response: IncomingMessage | undefined;
      const r = mod.request(u, { method: req.method, headers, agent: this.agentFor(u, ep) }, (res) => {
        response = res;
        r.setTimeout(0);
        res.once('end', forget);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: req.url });
      });
      // Not the `signal` option: Node keeps its abort listener after the response is complete, and an abort then
      // destroys the keep-alive socket with an error nothing listens for, which crashed berthd. Only a request
      // still at work is aborted.
      const onAbort = () => {
        if (!response?.complete) r.destroy(Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: ctx.signal.reason }));
      };
      const forget = () => ctx.signal.removeEventListener('abort', onAbort);
      if (ctx.signal.aborted) onAbort();
      else {
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        r.once('close', forget);
      }
      r.setTimeout(this.connectTimeoutMs, () => {
        r.destroy(Object.assign(new Error(`no response within ${Math.round(this.connectTimeoutMs / 1000)}s (timed out)`), { code: 'ETIMEDOUT' }));
      });
      r.on('error', reject);
      if (req.body === undefined) r.end();
      else if (Buffer.isBuffer(req.body)) r.end(req.body);
      else {
        req.body.on('error', (e) => r.destroy(e));
        req.body.pipe(r);
      }
    });
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw berthError('InvalidArgument', `registry CA file ${file}: ${(err as Error).message}`, err);
  }
}

/** Read at most `max` bytes of a response body; ResourceExhausted beyond it. */
export async function readCapped(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? -1);
  if (declared > max) {
    res.body.destroy();
    throw berthError('ResourceExhausted', `${what}: ${declared} bytes is more than the ${max}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      res.body.destroy();
      throw berthError('ResourceExhausted', `${what}: more than the ${max}-byte limit`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Drain and discard a body so its socket returns to the pool. */
export function discard(res: HttpResponse): void {
  res.body.resume();
}
