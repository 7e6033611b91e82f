import type { ErrorKind } from '../../core/errors.ts';

/**
 * berth's error kinds as the Docker Engine API's status codes (moby's
 * errdefs/httpstatus). The body is docker's `{"message": "..."}` with
 * berth's message, which the services already word as docker does
 * ("No such container: x", "No such image: x"). The docker CLI prints the
 * message and exits non-zero.
 */
const statusByKind: Record<ErrorKind, number> = {
  NotFound: 404,
  InvalidArgument: 400,
  AlreadyExists: 409,
  Conflict: 409,
  FailedPrecondition: 409,
  NotModified: 304,
  PermissionDenied: 403,
  Unauthenticated: 401,
  ResourceExhausted: 500,
  Unavailable: 503,
  Unimplemented: 501,
  Canceled: 500,
  DeadlineExceeded: 500,
  Internal: 500,
  DataLoss: 500,
  Unknown: 500,
};

export function dockerStatusOf(kind: ErrorKind): number {
  return statusByKind[kind];
}
