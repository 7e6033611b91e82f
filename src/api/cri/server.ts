import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { rootCtx } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import { checkBody } from '../../core/schema.ts';
import { toGrpcError } from './errors.ts';
import { CRI_REQUEST_SCHEMAS } from './requests.ts';
import { imageFsInfo } from './image-fs-info.ts';
import { listImages } from './image-list.ts';
import { imageStatus } from './image-status.ts';
import { pullImage } from './image-pull.ts';
import { removeImage } from './image-remove.ts';
import { status } from './runtime-status.ts';
import { listPodSandbox } from './sandbox-list.ts';
import { removePodSandbox } from './sandbox-remove.ts';
import { runPodSandbox } from './sandbox-run.ts';
import { podSandboxStatus } from './sandbox-status.ts';
import { stopPodSandbox } from './sandbox-stop.ts';
import { version } from './runtime-version.ts';
import type { CriDeps, UnaryHandler } from './types.ts';
import { STREAMING_METHODS, UNSERVED_RUNTIME_METHODS, unimplementedMessage } from './unimplemented.ts';

/**
 * The CRI v1 gRPC server: RuntimeService (Version, Status, the pod sandbox
 * lifecycle) and the whole ImageService, translated onto the engine's services. Every call runs in
 * the `k8s.io` namespace, whatever the native API's callers use, because the
 * CRI has no namespaces and containerd keeps Kubernetes' objects there too.
 *
 * The caller binds it (`bindAsync` on a unix address) and shuts it down;
 * `forceShutdown` ends calls in flight, whose ctx also aborts with
 * `deps.shutdown`.
 *
 * Example:
 *   const server = createCriServer(deps);
 *   server.bindAsync('unix:/run/berth/cri.sock', grpc.ServerCredentials.createInsecure(), cb);
 */
export const CRI_NAMESPACE = 'k8s.io';

/**
 * api.proto is read at run time. dist/ (types stripped) holds only .js, so
 * the file is found from the project root, which is three levels up from
 * both src/api/cri and dist/api/cri.
 */
export const CRI_PROTO_PATH = path.resolve(import.meta.dirname, '../../../src/api/cri/api.proto');

/** proto-loader options shared with clients: field names as in the .proto, 64-bit integers as strings. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

const RUNTIME_SERVICE = 'runtime.v1.RuntimeService';
const IMAGE_SERVICE = 'runtime.v1.ImageService';

export function createCriServer(deps: CriDeps): grpc.Server {
  const def = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const server = new grpc.Server();
  server.addService(def[RUNTIME_SERVICE] as grpc.ServiceDefinition, {
    Version: unary(deps, 'Version', version),
    Status: unary(deps, 'Status', status),
    RunPodSandbox: unary(deps, 'RunPodSandbox', runPodSandbox),
    StopPodSandbox: unary(deps, 'StopPodSandbox', stopPodSandbox),
    RemovePodSandbox: unary(deps, 'RemovePodSandbox', removePodSandbox),
    PodSandboxStatus: unary(deps, 'PodSandboxStatus', podSandboxStatus),
    ListPodSandbox: unary(deps, 'ListPodSandbox', listPodSandbox),
  });
  server.addService(def[IMAGE_SERVICE] as grpc.ServiceDefinition, {
    ListImages: unary(deps, 'ListImages', listImages),
    ImageStatus: unary(deps, 'ImageStatus', imageStatus),
    PullImage: unary(deps, 'PullImage', pullImage),
    RemoveImage: unary(deps, 'RemoveImage', removeImage),
    ImageFsInfo: unary(deps, 'ImageFsInfo', imageFsInfo),
  });
  addUnserved(server, RUNTIME_SERVICE, UNSERVED_RUNTIME_METHODS);
  return server;
}

function unary<Req, Res>(deps: CriDeps, rpc: string, fn: UnaryHandler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const cancel = new AbortController();
    let settled = false;
    // grpc-js also reports a call whose answer is already sent as cancelled once its stream closes; only a
    // call still at work is cancelled, as aborting a finished one would reach into what it left behind.
    call.once('cancelled', () => settled || cancel.abort(berthError('Canceled', `${rpc}: the client cancelled the call`)));
    const log = deps.log.child({ rpc, namespace: CRI_NAMESPACE });
    const ctx = rootCtx({ log, namespace: CRI_NAMESPACE, signal: AbortSignal.any([deps.shutdown, cancel.signal]) });
    const schema = CRI_REQUEST_SCHEMAS[rpc];
    (async () => {
      if (schema) checkBody(schema, call.request, 'plain');
      return fn(ctx, call.request, deps);
    })().then(
      (res) => {
        settled = true;
        callback(null, res);
      },
      (err) => {
        settled = true;
        const kind = kindOf(err);
        // An unknown or internal error is a bug: log it with its stack. The rest are the caller's to handle.
        if (kind === 'Unknown' || kind === 'Internal') log.error('CRI call failed', { err, stack: (err as Error)?.stack });
        else if (kind !== 'Canceled') log.debug('CRI call failed', { err: (err as Error)?.message, kind });
        callback(toGrpcError(err));
      },
    );
  };
}

/** Handlers for methods declared upstream but not served, on raw bytes: their messages are not in our api.proto. */
function addUnserved(server: grpc.Server, service: string, methods: readonly string[]): void {
  const raw = (b: Buffer) => b;
  const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of methods) {
    const streaming = STREAMING_METHODS.has(m);
    def[m] = {
      path: `/${service}/${m}`,
      requestStream: false,
      responseStream: streaming,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
      originalName: m,
    };
    const error = { code: grpc.status.UNIMPLEMENTED, details: unimplementedMessage(service, m) };
    impl[m] = streaming
      ? (call: grpc.ServerWritableStream<Buffer, Buffer>) => call.emit('error', error)
      : (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(error);
  }
  server.addService(def as grpc.ServiceDefinition, impl);
}
