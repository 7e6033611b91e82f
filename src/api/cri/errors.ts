import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { kindOf, type ErrorKind } from '../../core/errors.ts';

/**
 * The one table from berth's error kinds to gRPC status codes, as
 * containerd's errgrpc maps its errdefs: Conflict and NotModified are
 * FAILED_PRECONDITION, as containerd has no separate code for them.
 * docs/architecture.md ("The CRI front door") lists the same table;
 * errors.test.ts keeps the two in step.
 */
const codeByKind: Record<ErrorKind, GrpcStatus> = {
  NotFound: GrpcStatus.NOT_FOUND,
  InvalidArgument: GrpcStatus.INVALID_ARGUMENT,
  AlreadyExists: GrpcStatus.ALREADY_EXISTS,
  Conflict: GrpcStatus.FAILED_PRECONDITION,
  FailedPrecondition: GrpcStatus.FAILED_PRECONDITION,
  NotModified: GrpcStatus.FAILED_PRECONDITION,
  PermissionDenied: GrpcStatus.PERMISSION_DENIED,
  Unauthenticated: GrpcStatus.UNAUTHENTICATED,
  ResourceExhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  Unavailable: GrpcStatus.UNAVAILABLE,
  Unimplemented: GrpcStatus.UNIMPLEMENTED,
  Canceled: GrpcStatus.CANCELLED,
  DeadlineExceeded: GrpcStatus.DEADLINE_EXCEEDED,
  Internal: GrpcStatus.INTERNAL,
  DataLoss: GrpcStatus.DATA_LOSS,
  Unknown: GrpcStatus.UNKNOWN,
};

export function grpcCodeOf(kind: ErrorKind): GrpcStatus {
  return codeByKind[kind];
}

/** The status a failed call answers: the kind's code and the error's message, which names the problem. */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpcCodeOf(kindOf(err)), details: message, message };
}
