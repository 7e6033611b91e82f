import type { Router } from './server.ts';
import { API_VERSION } from './protocol.ts';

export function registerSystemRoutes(router: Router, info: { root: string; state: string }): void {
  router.add('GET', '/version', async () => ({
    version: process.env.npm_package_version ?? '0.1.0',
    apiVersion: API_VERSION,
    node: process.version,
    os: process.platform,
    arch: process.arch,
  }));
  router.add('GET', '/info', async () => ({ root: info.root, state: info.state, pid: process.pid }));
  router.add('GET', '/_ping', async () => 'OK');
}
