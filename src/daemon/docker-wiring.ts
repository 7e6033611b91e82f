import { rm } from 'node:fs/promises';
import type http from 'node:http';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import type { DockerApiDeps } from '../api/docker/api.ts';
import type { Config } from './config.ts';
import { lazyDoor } from './lazy-door.ts';
import { listenUnix } from './socket-bind.ts';

/**
 * The Docker API socket: `[docker] address` (default <state>/docker.sock),
 * with the daemon's socket mode and group, unless `[docker] enabled` is
 * false. The socket is bound at start; the API's code is loaded when its
 * first client connects (lazy-door.ts); `/_ping` and `/version` answer
 * from then on, every other route once the engine has recovered (`ready`),
 * as on the native API. `close()` stops it and removes the socket.
 */
export async function wireDocker(cfg: Config, ready: Promise<void>, deps: Omit<DockerApiDeps, 'root'>): Promise<{ close(): Promise<void> }> {
  const d = cfg.sections.daemon;
  const s = cfg.sections.docker;
  if (!s.enabled) return { close: async () => {} };
  const address = (s.address as string) || path.join(d.state as string, 'docker.sock');
  let server: http.Server | undefined;
  const door = lazyDoor('docker API', deps.log, async () => {
    const { createDockerApi } = await import('../api/docker/api.ts');
    const api = createDockerApi({ ...deps, root: d.root as string, ready });
    server = api;
    return (socket) => api.emit('connection', socket);
  });
  // The API's server never listens (the listener here does), so node:http does not track its connections.
  const sockets = new Set<Socket>();
  // Half-open as node:http's own servers are: the docker CLI shuts its side of an attach down and still reads.
  const listener = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    door.accept(socket);
  });
  await listenUnix(listener, address, { mode: d.socket_mode as string, group: d.socket_group as string });
  deps.log.info('docker API listening', { address });
  return {
    async close() {
      listener.close();
      server?.close();
      for (const socket of sockets) socket.destroy();
      await rm(address, { force: true });
    },
  };
}
