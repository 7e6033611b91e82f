import { rm } from 'node:fs/promises';
import path from 'node:path';
import { createDockerApi, type DockerApiDeps } from '../api/docker/api.ts';
import type { Config } from './config.ts';
import { listenUnix } from './socket-bind.ts';

/**
 * The Docker API socket: `[docker] address` (default <state>/docker.sock),
 * with the daemon's socket mode and group, unless `[docker] enabled` is
 * false. `close()` stops it and removes the socket.
 */
export async function wireDocker(cfg: Config, deps: Omit<DockerApiDeps, 'root'>): Promise<{ close(): Promise<void> }> {
  const d = cfg.sections.daemon;
  const s = cfg.sections.docker;
  if (!s.enabled) return { close: async () => {} };
  const address = (s.address as string) || path.join(d.state as string, 'docker.sock');
  const server = createDockerApi({ ...deps, root: d.root as string });
  await listenUnix(server, address, { mode: d.socket_mode as string, group: d.socket_group as string });
  deps.log.info('docker API listening', { address });
  return {
    async close() {
      server.close();
      server.closeAllConnections();
      await rm(address, { force: true });
    },
  };
}
