import path from 'node:path';
import { CRI_NAMESPACE } from './config.ts';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { rootCtx } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import { createContainer } from './container-create.ts';
import { listContainers } from './container-list.ts';
import { removeContainer } from './container-remove.ts';
import { reopenContainerLog } from './container-reopen-log.ts';
import { startContainer } from './container-start.ts';
import { containerStatus } from './container-status.ts';
import { stopContainer } from './container-stop.ts';
import { updateContainerResources } from './container-update.ts';
import { checkBody } from '../../core/schema.ts';
import { toGrpcError } from './errors.ts';
import { CRI_REQUEST_SCHEMAS } from './requests.ts';
import { streamContainerEvents } from './container-events.ts';
import { containerStats, listContainerStats } from './container-stats.ts';
import { listMetricDescriptors } from './metric-descriptors.ts';
import { listPodSandboxMetrics } from './sandbox-metrics.ts';
import { listPodSandboxStats, podSandboxStats } from './sandbox-stats.ts';
import { CriStatsCache } from './stats-cache.ts';
import { execSync } from './exec-sync.ts';
import { imageFsInfo } from './image-fs-info.ts';
import { listImages } from './image-list.ts';
import { imageStatus } from './image-status.ts';
import { pullImage } from './image-pull.ts';
import { removeImage } from './image-remove.ts';
import { runtimeConfig, updateRuntimeConfig } from './runtime-config.ts';
import { status } from './runtime-status.ts';
import { listPodSandbox } from './sandbox-list.ts';
import { removePodSandbox } from './sandbox-remove.ts';
import { runPodSandbox } from './sandbox-run.ts';
import { podSandboxStatus } from './sandbox-status.ts';
import { updatePodSandboxResources } from './sandbox-update-resources.ts';
import { stopPodSandbox } from './sandbox-stop.ts';
import { attach } from './streaming-attach.ts';
import { exec } from './streaming-exec.ts';
import { portForward } from './streaming-port-forward.ts';
import { version } from './runtime-version.ts';
import { criServiceDefinitions, type CriServiceDefinitions } from './service-definitions.ts';
import type { CriDeps, UnaryHandler } from './types.ts';
import { UNSERVED_RUNTIME_METHODS, unimplementedMessage } from './unimplemented.ts';

/**
 * The CRI v1 gRPC server: RuntimeService (Version, Status, the pod sandbox
 * and container lifecycles, ExecSync) and the whole ImageService, translated onto the engine's services. Every call runs in
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
export { CRI_NAMESPACE };

/**
 * api.proto, found from the project root, which is three levels up from
 * both src/api/cri and dist/api/cri. Built, berthd loads the JSON the build
 * made of it instead (service-definitions.ts).
 */
export const CRI_PROTO_PATH = path.resolve(import.meta.dirname, '../../../src/api/cri/api.proto');

/** proto-loader options shared with clients: field names as in the .proto, 64-bit integers as strings. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

const RUNTIME_SERVICE = 'runtime.v1.RuntimeService';
const IMAGE_SERVICE = 'runtime.v1.ImageService';
/** What answers while the engine recovers (CriDeps.ready): a kubelet's first probe of the runtime. */
const ANSWERED_BEFORE_READY = new Set(['Version']);

export function createCriServer(deps: CriDeps): grpc.Server {
  const def = criServiceDefinitions(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const server = new grpc.Server();
  const stats = new CriStatsCache(deps);
  deps.shutdown.addEventListener('abort', () => stats.close(), { once: true });
  // Pods made or ended change what the stats list; containers' changes reach the cache through the event bus.
  const changesPods = (fn: UnaryHandler<any, any>): UnaryHandler<any, any> => async (ctx, req, d) => {
    try {
      return await fn(ctx, req, d);
    } finally {
      stats.invalidate();
    }
  };
  const runtime: grpc.UntypedServiceImplementation = {
    Version: unary(deps, 'Version', version),
    Status: unary(deps, 'Status', status),
    RunPodSandbox: unary(deps, 'RunPodSandbox', changesPods(runPodSandbox)),
    StopPodSandbox: unary(deps, 'StopPodSandbox', changesPods(stopPodSandbox)),
    RemovePodSandbox: unary(deps, 'RemovePodSandbox', changesPods(removePodSandbox)),
    PodSandboxStatus: unary(deps, 'PodSandboxStatus', podSandboxStatus),
    ListPodSandbox: unary(deps, 'ListPodSandbox', listPodSandbox),
    CreateContainer: unary(deps, 'CreateContainer', createContainer),
    StartContainer: unary(deps, 'StartContainer', startContainer),
    StopContainer: unary(deps, 'StopContainer', stopContainer),
    RemoveContainer: unary(deps, 'RemoveContainer', removeContainer),
    ListContainers: unary(deps, 'ListContainers', listContainers),
    ContainerStatus: unary(deps, 'ContainerStatus', containerStatus),
    UpdateContainerResources: unary(deps, 'UpdateContainerResources', updateContainerResources),
    ReopenContainerLog: unary(deps, 'ReopenContainerLog', reopenContainerLog),
    ExecSync: unary(deps, 'ExecSync', execSync),
    ContainerStats: unary(deps, 'ContainerStats', containerStats(stats)),
    ListContainerStats: unary(deps, 'ListContainerStats', listContainerStats(stats)),
    PodSandboxStats: unary(deps, 'PodSandboxStats', podSandboxStats(stats)),
    ListPodSandboxStats: unary(deps, 'ListPodSandboxStats', listPodSandboxStats(stats)),
    ListMetricDescriptors: unary(deps, 'ListMetricDescriptors', listMetricDescriptors),
    ListPodSandboxMetrics: unary(deps, 'ListPodSandboxMetrics', listPodSandboxMetrics(stats)),
    GetContainerEvents: serverStream(deps, 'GetContainerEvents', streamContainerEvents),
    UpdatePodSandboxResources: unary(deps, 'UpdatePodSandboxResources', updatePodSandboxResources),
    RuntimeConfig: unary(deps, 'RuntimeConfig', runtimeConfig),
    UpdateRuntimeConfig: unary(deps, 'UpdateRuntimeConfig', updateRuntimeConfig),
    Exec: unary(deps, 'Exec', exec),
    Attach: unary(deps, 'Attach', attach),
    PortForward: unary(deps, 'PortForward', portForward),
  };
  const image: grpc.UntypedServiceImplementation = {
    ListImages: unary(deps, 'ListImages', listImages),
    ImageStatus: unary(deps, 'ImageStatus', imageStatus),
    PullImage: unary(deps, 'PullImage', pullImage),
    RemoveImage: unary(deps, 'RemoveImage', removeImage),
    ImageFsInfo: unary(deps, 'ImageFsInfo', imageFsInfo),
  };
  server.addService(withUnserved(def, RUNTIME_SERVICE, runtime, UNSERVED_RUNTIME_METHODS), runtime);
  server.addService(withUnserved(def, IMAGE_SERVICE, image, []), image);
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
      if (!ANSWERED_BEFORE_READY.has(rpc)) await deps.ready;
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

/**
 * A server-streaming call: `fn` sends messages until the client cancels
 * (the ctx aborts) or berthd stops; then the stream ends with OK, or with
 * the error's status if `fn` failed.
 */
function serverStream<Req>(
  deps: CriDeps,
  rpc: string,
  fn: (ctx: ReturnType<typeof rootCtx>, deps: CriDeps, send: (msg: object) => boolean | void, req: Req) => Promise<void>,
): grpc.handleServerStreamingCall<Req, object> {
  return (call) => {
    const cancel = new AbortController();
    call.once('cancelled', () => cancel.abort(berthError('Canceled', `${rpc}: the client cancelled the call`)));
    const log = deps.log.child({ rpc, namespace: CRI_NAMESPACE });
    const ctx = rootCtx({ log, namespace: CRI_NAMESPACE, signal: AbortSignal.any([deps.shutdown, cancel.signal]) });
    // Headers at once: the client knows the stream is open before its first message, which may be long in coming.
    call.sendMetadata(new grpc.Metadata());
    (async () => {
      await deps.ready;
      return fn(ctx, deps, (msg) => !call.cancelled && call.write(msg), call.request);
    })().then(
      () => {
        if (!call.cancelled) call.end();
      },
      (err) => {
        if (call.cancelled) return;
        if (kindOf(err) !== 'Canceled') log.warn('CRI stream failed', { err: (err as Error)?.message });
        call.emit('error', toGrpcError(err));
      },
    );
  };
}

/**
 * The service's definition, after adding to `impl` an UNIMPLEMENTED answer naming the method for each
 * method in `unserved`. A method the proto declares that is neither served nor listed is a bug caught
 * here, at start-up, rather than grpc-js's anonymous default answer at run time.
 */
function withUnserved(
  def: CriServiceDefinitions,
  service: string,
  impl: grpc.UntypedServiceImplementation,
  unserved: readonly string[],
): grpc.ServiceDefinition {
  const methods = def[service];
  if (!methods) throw new Error(`${service}: not in api.proto`);
  for (const m of unserved) {
    const method = methods[m];
    if (!method) throw new Error(`${service}/${m}: listed as unserved but not in api.proto`);
    const error = { code: grpc.status.UNIMPLEMENTED, details: unimplementedMessage(service, m) };
    impl[m] = method.responseStream
      ? (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', error)
      : (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(error);
  }
  const missing = Object.keys(methods).filter((m) => !impl[m]);
  if (missing.length > 0) throw new Error(`${service}: ${missing.join(', ')} neither served nor listed as unserved`);
  return methods;
}
