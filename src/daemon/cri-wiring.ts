import { accessSync, constants } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { SectionValues } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { CRI_NAMESPACE, criConfig } from '../api/cri/config.ts';
import type { Readiness } from '../api/cri/types.ts';
import type { ImageService } from '../images/service.ts';
import { networkConfig } from '../network/config.ts';
import { lookPath } from '../runtime/tasks/runc.ts';
import { runtimeConfig } from '../runtime/tasks/task-config.ts';
import type { ContainerService } from '../runtime/containers/containers.ts';
import type { SandboxService } from '../runtime/sandboxes/sandbox-types.ts';
import type { EventBus } from '../core/events.ts';
import { diskUsage } from '../snapshots/usage.ts';
import { listenUnix } from './socket-bind.ts';
import { lazyDoor } from './lazy-door.ts';

/**
 * Starts the CRI front door on `cri.address` (default `<state>/cri.sock`)
 * unless `cri.enabled` is false. The socket and the streaming port are bound
 * at start; gRPC and the CRI server are loaded when the first client
 * connects (lazy-door.ts), so a berthd no kubelet talks to never loads them.
 * Its connections are served once that load is done: Version at once,
 * every other call once the engine has recovered (`ready`), as the native
 * API does, so a kubelet that starts with berthd hears from it before a
 * long recovery ends.
 */
export interface CriWiring {
  address: string;
  close(): Promise<void>;
}

/** The CNI plugins every container network of berth's uses. */
const REQUIRED_CNI_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];

export async function wireCri(opts: {
  cri: SectionValues;
  daemon: SectionValues;
  network: SectionValues;
  runtime: SectionValues;
  images: ImageService;
  sandboxes: SandboxService;
  containers: ContainerService;
  events: EventBus;
  snapshotRoot: string;
  log: Logger;
  shutdown: AbortSignal;
  /** Settles once the engine has recovered: no call but Version is served before. */
  ready: Promise<void>;
}): Promise<CriWiring | undefined> {
  const cfg = criConfig(opts.cri);
  if (!cfg.enabled) return undefined;
  const address = cfg.address ? path.resolve(cfg.address) : path.join(opts.daemon.state as string, 'cri.sock');
  const log = opts.log.child({ component: 'cri' });
  // The streaming server is light (node:http, which berthd has loaded already) and binds its port at
  // start, so a bad or busy port stops berthd there; gRPC and the CRI's protobuf wait for the first client.
  const [{ StreamingServer }, { criStreamingRuntime }] = await Promise.all([import('../api/cri/streaming/server.ts'), import('../api/cri/streaming-runtime.ts')]);
  // The streaming server answers the URLs of Exec, Attach and PortForward (address and port from [cri]).
  const streamLog = log.child({ component: 'cri-streaming' });
  const streaming = new StreamingServer({
    address: cfg.streaming.address,
    port: cfg.streaming.port,
    idleTimeoutMs: cfg.streaming.idleTimeoutMs,
    tokenTtlMs: cfg.streaming.tokenTtlMs,
    log: streamLog,
    runtime: criStreamingRuntime({ containers: opts.containers, sandboxes: opts.sandboxes, log: streamLog, shutdown: opts.shutdown, namespace: CRI_NAMESPACE }),
  });
  await streaming.start().catch((err: NodeJS.ErrnoException) => {
    throw berthError('InvalidArgument', `config: "cri.stream_server_address" and "cri.stream_server_port": listen on ${cfg.streaming.address}:${cfg.streaming.port}: ${err.code ?? err.message}`, err);
  });
  log.info('CRI streaming server listening', { url: streaming.baseUrl });
  const net = networkConfig(opts.network);
  const rt = runtimeConfig(opts.runtime);
  const version = await projectVersion();
  let usage: Promise<{ size: number; inodes: number }> | undefined;
  let server: { forceShutdown(): void } | undefined;
  const door = lazyDoor('CRI', log, async () => {
    // Not waiting for the engine's recovery: Version answers at once, every other call waits for it (CriDeps.ready).
    const [grpc, { createCriServer }, { acceptConnection }] = await Promise.all([
      import('@grpc/grpc-js'),
      import('../api/cri/server.ts'),
      import('../api/cri/authority-front.ts'),
    ]);
    const grpcServer = createCriServer({
      images: opts.images,
      sandboxes: opts.sandboxes,
      containers: opts.containers,
      events: opts.events,
      snapshotRoot: opts.snapshotRoot,
      streaming,
      version,
      runtimeState: { podCidrs: [] },
      log,
      shutdown: opts.shutdown,
      ready: opts.ready,
      async readiness() {
        return { runtime: await runtimeReadiness(rt.runtimes[rt.defaultRuntime], rt.monitorPath), network: await networkReadiness(net.pluginDirs) };
      },
      async imageFsUsage(ctx: Ctx) {
        // Walking the snapshots is the cost: concurrent calls share one walk.
        usage ??= diskUsage(ctx, opts.snapshotRoot).finally(() => (usage = undefined));
        const u = await usage;
        return { mountpoint: opts.snapshotRoot, usedBytes: u.size, inodesUsed: u.inodes };
      },
    });
    server = grpcServer;
    // Connections reach grpc-js through the authority front, so that clients sending a socket path as
    // :authority are served too (api/cri/authority-front.ts).
    const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const onError = (err: Error) => log.debug('CRI client sent a malformed HTTP/2 stream; disconnected', { err: err.message });
    return (socket) => acceptConnection(socket, (connection) => injector.injectConnection(connection), { onError });
  });
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    door.accept(socket);
  });
  await listenUnix(listener, address, { mode: opts.daemon.socket_mode as string, group: opts.daemon.socket_group as string });
  log.info('CRI listening', { address });
  return {
    address,
    async close() {
      listener.close();
      server?.forceShutdown();
      for (const socket of sockets) socket.destroy();
      await streaming.close();
      await rm(address, { force: true });
    },
  };
}

async function projectVersion(): Promise<string> {
  // package.json is at the project root, three levels up from src/daemon and dist/daemon alike.
  const text = await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8').catch(() => '{}');
  return (JSON.parse(text) as { version?: string }).version ?? '0.0.0';
}

async function runtimeReadiness(runtimeBin: string, monitorPath: string): Promise<Readiness> {
  if (!isExecutable(runtimeBin)) return { ready: false, reason: 'OCIRuntimeNotFound', message: `OCI runtime "${runtimeBin}" is not an executable file (nor found in PATH)` };
  if (!isExecutable(monitorPath)) return { ready: false, reason: 'MonitorNotFound', message: `container monitor "${monitorPath}" is not an executable file` };
  return { ready: true };
}

async function networkReadiness(pluginDirs: string[]): Promise<Readiness> {
  for (const plugin of REQUIRED_CNI_PLUGINS) {
    if (!isExecutable(plugin, pluginDirs.join(':'))) {
      return { ready: false, reason: 'NetworkPluginNotReady', message: `CNI plugin "${plugin}" not found in ${pluginDirs.join(', ')}` };
    }
  }
  return { ready: true };
}

/** A path as it is, or a bare name found in `pathEnv` (PATH by default) by the runtime's own lookup. */
function isExecutable(name: string, pathEnv?: string): boolean {
  const file = lookPath(name, pathEnv);
  if (!file.includes('/')) return false;
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
