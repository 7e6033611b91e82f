import type { Logger } from './log.ts';
import { silentLogger } from './log.ts';

/**
 * The first argument of every function that does I/O. Derive a new ctx with
 * `withCtx` rather than mutating one.
 *
 * - `signal` aborts the operation; pass it to every fs, spawn and fetch call.
 * - `namespace` scopes metadata (images, containers, ...): `default`, `k8s.io`.
 * - `lease` protects content and snapshots created under it from GC until the
 *   lease is deleted.
 */
export interface Ctx {
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly namespace: string;
  readonly lease?: string;
}

export const DEFAULT_NAMESPACE = 'default';

export function rootCtx(opts: Partial<Ctx> = {}): Ctx {
  return {
    signal: opts.signal ?? new AbortController().signal,
    log: opts.log ?? silentLogger,
    namespace: opts.namespace ?? DEFAULT_NAMESPACE,
    lease: opts.lease,
  };
}

export function withCtx(ctx: Ctx, changes: Partial<Ctx>): Ctx {
  return { ...ctx, ...changes };
}

/**
 * A ctx for rollback: it never inherits the request's signal (which may have
 * aborted already) and gets its own timeout instead.
 */
export function cleanupCtx(ctx: Ctx, timeoutMs = 30_000): Ctx {
  return { ...ctx, signal: AbortSignal.timeout(timeoutMs) };
}

/** Namespace names follow containerd: a DNS label-ish string, dots allowed. */
export function validateNamespace(name: string): boolean {
  return /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,74}[A-Za-z0-9])?$/.test(name);
}
