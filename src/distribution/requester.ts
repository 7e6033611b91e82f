import { setTimeout as sleep } from 'node:timers/promises';
import type { Ctx } from '../core/context.ts';
import { berthError, kindOf } from '../core/errors.ts';
import type { Authorizer } from './auth.ts';
import type { DistributionConfig } from './config.ts';
import type { Credentials } from './credentials.ts';
import type { Capability, RegistryEndpoint } from './hosts.ts';
import type { HttpRequest, HttpResponse, Transport } from './transport.ts';
import { discard, hostOfUrl, markRetryable, readCapped, retryable } from './transport.ts';

/**
 * Requests to a registry with everything around a single HTTP attempt:
 * endpoint order (mirrors first), authorization (answering 401 challenges
 * once), bounded retries with exponential backoff on connection errors,
 * 5xx and 429 (honouring Retry-After up to 10s), and redirects for GET/HEAD (blob storage often redirects;
 * credentials are not sent to another host).
 *
 * A response comes back for any status below 500 other than 401 and 429;
 * callers map the rest with `responseError`.
 */
export interface RequestSpec {
  method: string;
  /** Path below the endpoint's `/v2`, e.g. `/library/busybox/manifests/latest`. */
  path?: string;
  /** An absolute URL instead of `path` (an upload's Location). */
  url?: string;
  headers?: Record<string, string>;
  /** A Buffer is re-sent on retry; a stream body disables retries. */
  body?: HttpRequest['body'];
}

export interface RequestOptions {
  /** Credentials to use instead of the store's (login). */
  credentials?: Credentials;
  /** Override `cfg.retries`. */
  retries?: number;
}

const MAX_REDIRECTS = 5;
/** A registry asking for a longer pause than this gets it capped; the retries stay bounded in time. */
const MAX_RETRY_AFTER_S = 10;

export class Requester {
  readonly transport: Transport;
  readonly auth: Authorizer;
  readonly cfg: DistributionConfig;
  private readonly hosts: (ctx: Ctx, domain: string) => Promise<RegistryEndpoint[]>;

  constructor(transport: Transport, auth: Authorizer, cfg: DistributionConfig, hosts: (ctx: Ctx, domain: string) => Promise<RegistryEndpoint[]>) {
    this.transport = transport;
    this.auth = auth;
    this.cfg = cfg;
    this.hosts = hosts;
  }

  /** Endpoints of `domain` that have `cap`, in order. */
  async endpoints(ctx: Ctx, domain: string, cap: Capability): Promise<RegistryEndpoint[]> {
    const eps = (await this.hosts(ctx, domain)).filter((e) => e.capabilities.includes(cap));
    if (eps.length === 0) throw berthError('FailedPrecondition', `registry ${domain}: no configured host can ${cap}`);
    return eps;
  }

  /**
   * Try the endpoints of `domain` with `cap` in order: a 404 or any error
   * but cancellation moves on to the next (a broken mirror must not block
   * pulls, as in containerd); the last one's answer stands.
   */
  async first(ctx: Ctx, domain: string, cap: Capability, scopes: string[], spec: RequestSpec): Promise<{ res: HttpResponse; ep: RegistryEndpoint }> {
    const eps = await this.endpoints(ctx, domain, cap);
    for (let i = 0; ; i++) {
      const ep = eps[i];
      const last = i === eps.length - 1;
      try {
        // Mirrors get one attempt each: retrying them only delays the fall-through.
        const res = await this.on(ctx, ep, scopes, spec, last ? {} : { retries: 0 });
        if (res.status === 404 && !last) {
          discard(res);
          continue;
        }
        return { res, ep };
      } catch (err) {
        if (last || kindOf(err) === 'Canceled') throw err;
        ctx.log.debug('registry endpoint failed, trying the next', { url: ep.url, err });
      }
    }
  }

  /** One logical request to `ep`: auth, retries, redirects. */
  async on(ctx: Ctx, ep: RegistryEndpoint, scopes: string[], spec: RequestSpec, opts: RequestOptions = {}): Promise<HttpResponse> {
    const replayable = spec.body === undefined || Buffer.isBuffer(spec.body);
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      try {
        let url = spec.url ?? `${ep.url}${spec.path ?? ''}`;
        let authz = await this.auth.header(ctx, ep, scopes, opts.credentials);
        const headers = { ...spec.headers, ...(authz ? { authorization: authz } : {}) };
        let res = await this.transport.send(ctx, { method: spec.method, url, headers, body: spec.body }, ep);
        for (let hops = 0; isRedirect(res) && (spec.method === 'GET' || spec.method === 'HEAD'); hops++) {
          if (hops >= MAX_REDIRECTS) throw berthError('Unknown', `registry ${ep.registry}: too many redirects`);
          discard(res);
          const next = new URL(String(res.headers.location), url);
          const same = next.host === hostOfUrl(url);
          url = next.toString();
          const h = { ...spec.headers };
          if (same && authz) h.authorization = authz;
          else authz = undefined;
          res = await this.transport.send(ctx, { method: spec.method, url, headers: h }, same ? ep : undefined);
        }
        if (res.status === 401) {
          const again = !authRetried && (await this.auth.onUnauthorized(ctx, ep, res, scopes, authz, opts.credentials));
          if (again && replayable) {
            discard(res);
            authRetried = true;
            attempt--;
            continue;
          }
          throw await responseError(res, `registry ${ep.registry}`);
        }
        if (res.status >= 500 || res.status === 429) {
          const err = await responseError(res, `registry ${ep.registry}`);
          const after = Number(res.headers['retry-after']);
          if (after > 0) (err as { retryAfterMs?: number }).retryAfterMs = Math.min(after, MAX_RETRY_AFTER_S) * 1000;
          throw markRetryable(err);
        }
        return res;
      } catch (err) {
        if (!retryable(err) || !replayable || attempt >= (opts.retries ?? this.cfg.retries) || ctx.signal.aborted) throw err;
        const backoff = this.cfg.retryBackoffMs * 2 ** attempt * (0.75 + Math.random() / 2);
        const delay = Math.max(backoff, (err as { retryAfterMs?: number }).retryAfterMs ?? 0);
        ctx.log.debug('registry request failed, retrying', { url: ep.url, attempt: attempt + 1, delayMs: Math.round(delay), err });
        await sleep(delay, undefined, { signal: ctx.signal });
      }
    }
  }
}

function isRedirect(res: HttpResponse): boolean {
  return [301, 302, 303, 307, 308].includes(res.status) && typeof res.headers.location === 'string';
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

/**
 * The berth error for a registry's error response, with the registry's own
 * error code and message when its body has them. `what` names the thing:
 * `docker.io/library/x:y` gives `docker.io/library/x:y: not found`.
 */
export async function responseError(res: HttpResponse, what: string): Promise<Error> {
  let detail = '';
  let codes: string[] = [];
  try {
    const body = res.body.readableEnded ? Buffer.alloc(0) : await readCapped(res, 64 * 1024, what);
    const doc = JSON.parse(body.toString('utf8')) as RegistryErrorBody;
    codes = (doc.errors ?? []).map((e) => e.code ?? '');
    detail = (doc.errors ?? []).map((e) => `${(e.code ?? '').toLowerCase().replace(/_/g, ' ')}: ${e.message ?? ''}`.trim()).join('; ');
  } catch {
    // Not JSON, or cut off: the status says enough.
  }
  const s = res.status;
  const suffix = detail ? ` (${detail})` : '';
  if (s === 404 || codes.some((c) => /_UNKNOWN$/.test(c))) return berthError('NotFound', `${what}: not found`);
  if (s === 401) {
    return berthError('Unauthenticated', `${what}: unauthorized: authentication required${suffix}`);
  }
  if (s === 403 || codes.includes('DENIED')) return berthError('PermissionDenied', `${what}: access denied${suffix}`);
  if (s === 429) return berthError('ResourceExhausted', `${what}: too many requests${suffix}`);
  if (s >= 500) {
    const host = hostOfUrl(res.url);
    return berthError('Unavailable', `${what}: ${what.includes(host) ? '' : `registry ${host} `}answered ${s}${suffix}`);
  }
  if (s === 405 || codes.includes('UNSUPPORTED')) return berthError('Unimplemented', `${what}: operation not supported by the registry${suffix}`);
  if (s === 400 || s === 413 || s === 416) return berthError('InvalidArgument', `${what}: rejected by the registry (${s})${suffix}`);
  return berthError('Unknown', `${what}: unexpected status ${s} from registry ${hostOfUrl(res.url)}${suffix}`);
}

/** A counting semaphore: at most `n` holders. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly n: number;

  constructor(n: number) {
    this.n = n;
  }

  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.active >= this.n) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiters.indexOf(go);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        const go = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiters.push(go);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }
}
