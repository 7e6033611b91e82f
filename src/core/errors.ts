/**
 * The closed set of error kinds every layer speaks. Front doors map kinds to
 * their protocol's codes in one table each (see docs/errors.md); the native
 * API client maps them back so a kind survives the socket.
 *
 * Test `err.kind`, never the message. `isBerthError` checks a Symbol.for
 * brand rather than `instanceof`, so errors survive two loaded copies of this
 * module.
 */
export const ErrorKinds = [
  'NotFound',
  'InvalidArgument',
  'AlreadyExists',
  'Conflict',
  'FailedPrecondition',
  'NotModified',
  'PermissionDenied',
  'Unauthenticated',
  'ResourceExhausted',
  'Unavailable',
  'Unimplemented',
  'Canceled',
  'DeadlineExceeded',
  'Internal',
  'DataLoss',
  'Unknown',
] as const;

export type ErrorKind = (typeof ErrorKinds)[number];

const brand = Symbol.for('berth.error');

export class BerthError extends Error {
  readonly kind: ErrorKind;
  readonly [brand] = true;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = `BerthError(${kind})`;
  }
}

export function isBerthError(err: unknown): err is BerthError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[brand] === true;
}

/** Create an error of `kind`; the message should name the thing and the problem. */
export function berthError(kind: ErrorKind, message: string, cause?: unknown): BerthError {
  return new BerthError(kind, message, cause === undefined ? undefined : { cause });
}

/** The first kind found walking the cause chain; abort errors count as Canceled. */
export function kindOf(err: unknown): ErrorKind {
  for (let e: unknown = err, depth = 0; e && depth < 16; e = (e as { cause?: unknown }).cause, depth++) {
    if (isBerthError(e)) return e.kind;
    const name = (e as { name?: string }).name;
    if (name === 'AbortError') return 'Canceled';
    if (name === 'TimeoutError') return 'DeadlineExceeded';
    const code = (e as { code?: string }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return 'ResourceExhausted';
  }
  return 'Unknown';
}

export const isNotFound = (err: unknown): boolean => kindOf(err) === 'NotFound';
export const isAlreadyExists = (err: unknown): boolean => kindOf(err) === 'AlreadyExists';
export const isInvalidArgument = (err: unknown): boolean => kindOf(err) === 'InvalidArgument';
export const isConflict = (err: unknown): boolean => kindOf(err) === 'Conflict';
export const isCanceled = (err: unknown): boolean => kindOf(err) === 'Canceled';

/**
 * Prefix an error's message with context, keeping its kind:
 * `wrap(err, 'snapshot "k1"')` reads `snapshot "k1": parent "p0": not found`.
 */
export function wrap(err: unknown, context: string): BerthError {
  const message = err instanceof Error ? err.message : String(err);
  return new BerthError(kindOf(err), `${context}: ${message}`, { cause: err });
}

/** True for a node:fs style errno error with the given code. */
export function hasErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
