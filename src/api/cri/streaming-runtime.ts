import net from 'node:net';
import type { Duplex } from 'node:stream';
import { rootCtx, type Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { dialInNetns } from '../../network/netns-dial.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import type { SandboxService } from '../../runtime/sandboxes/sandbox-types.ts';
import type { ProcessIO } from './streaming/remotecommand.ts';
import type { StreamingRuntime } from './streaming/server.ts';

/**
 * What the streaming server runs, on the engine's services, in namespace
 * k8s.io: exec and attach through the container service (the same paths
 * the Docker API's and the native API's take), port forwarding to the
 * pod's loopback through berth-nsconnect (or the node's loopback for a pod
 * on the node's network).
 */
export function criStreamingRuntime(deps: { containers: ContainerService; sandboxes: SandboxService; log: Logger; shutdown: AbortSignal; namespace: string; nsConnectPath?: string }): StreamingRuntime {
  const ctxFor = (what: string): Ctx => rootCtx({ log: deps.log.child({ stream: what }), namespace: deps.namespace, signal: deps.shutdown });
  return {
    async exec(req): Promise<ProcessIO> {
      const ctx = ctxFor('exec');
      const { containers } = deps;
      const execId = await containers.execCreate(ctx, req.containerId, { cmd: req.cmd, tty: req.tty, attachStdin: req.stdin, stdinOnce: req.stdin });
      const { stream } = await containers.execStart(ctx, execId);
      if (!stream) throw berthError('Internal', `exec ${execId} started without a stream`);
      return {
        stream,
        tty: req.tty,
        resize: (s) => containers.execResize(ctx, execId, s.height, s.width),
        closeStdin: () => containers.execCloseStdin(ctx, execId),
        wait: () => containers.execWait(ctx, execId),
        abort: () => containers.execKill(ctx, execId),
      };
    },
    async attach(req): Promise<ProcessIO> {
      const ctx = ctxFor('attach');
      const { containers } = deps;
      const { stream, tty, record } = await containers.attach(ctx, req.containerId);
      return {
        stream,
        tty,
        resize: (s) => containers.resize(ctx, record.id, s.height, s.width),
        // Only a container that asked for it (StdinOnce) loses its stdin when an attached client's ends, as in containerd.
        closeStdin: async () => (record.config.stdinOnce ? containers.closeStdin(ctx, record.id) : undefined),
        wait: async () => undefined,
        abort: async () => undefined,
      };
    },
    async dial(podSandboxId, port): Promise<Duplex> {
      const ctx = ctxFor('portforward');
      const sb = await deps.sandboxes.status(ctx, podSandboxId);
      if (sb.state !== 'ready') throw berthError('FailedPrecondition', `sandbox container "${sb.id}" is not running`);
      if (sb.namespaces.network === 'node') return connectHost(port);
      if (!sb.netnsPath) throw berthError('FailedPrecondition', `network namespace for sandbox "${sb.id}" is closed`);
      return dialInNetns(sb.netnsPath, port, deps.nsConnectPath);
    },
  };
}

function connectHost(port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', (err) => reject(berthError('Unavailable', `connect to localhost:${port}: ${err.message}`)));
  });
}
