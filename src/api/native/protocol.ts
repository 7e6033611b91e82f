import type { ErrorKind } from '../../core/errors.ts';

/**
 * berth's native API: HTTP/1.1 with JSON bodies on a unix socket.
 *
 * - The namespace travels in the `X-Berth-Namespace` header.
 * - A failed request answers the status from `httpStatusOf(kind)` and a body
 *   `{ "kind": "...", "message": "..." }`; the client rebuilds a BerthError
 *   with the same kind.
 * - Long operations (pull, push, logs -f, events) answer
 *   `application/x-ndjson`: one JSON object a line. A failure after the
 *   stream started arrives as a last line `{ "error": { kind, message } }`.
 * - Interactive streams (attach, exec) upgrade the connection
 *   (`Connection: Upgrade`, `Upgrade: berth-stream`) and then carry raw bytes.
 */
export const NAMESPACE_HEADER = 'x-berth-namespace';
export const UPGRADE_PROTOCOL = 'berth-stream';
export const API_VERSION = '1';

export interface ErrorBody {
  kind: ErrorKind;
  message: string;
}

const statusByKind: Record<ErrorKind, number> = {
  NotFound: 404,
  InvalidArgument: 400,
  AlreadyExists: 409,
  Conflict: 409,
  FailedPrecondition: 412,
  NotModified: 304,
  PermissionDenied: 403,
  Unauthenticated: 401,
  ResourceExhausted: 429,
  Unavailable: 503,
  Unimplemented: 501,
  Canceled: 500,
  DeadlineExceeded: 500,
  Internal: 500,
  DataLoss: 500,
  Unknown: 500,
};

export function httpStatusOf(kind: ErrorKind): number {
  return statusByKind[kind];
}

/**
 * `POST /containers/run` (create, attach, start and wait in one request;
 * see routes-run.ts): the 101 answer names the new container and create's
 * warnings (a JSON array) in these headers.
 */
export const CONTAINER_ID_HEADER = 'x-berth-container-id';
export const WARNINGS_HEADER = 'x-berth-warnings';

/**
 * Stream numbers of a `POST /containers/run` stream beyond docker's stdout
 * and stderr (its tty output is framed too): a message of the engine's, and
 * the last frame, JSON `{ "exitCode": N }` with `error` when the engine
 * failed rather than the container.
 */
export const RunStreams = { systemErr: 3, exit: 4 } as const;
