import type { Ctx } from '../../core/context.ts';
import type { Router } from './server.ts';
import { API_VERSION } from './protocol.ts';

/** What `GET /info` reports beyond the daemon's own facts: counts and settings the services hold. */
export type DescribeEngine = (ctx: Ctx) => Promise<Record<string, unknown>>;

export function registerSystemRoutes(router: Router, info: { root: string; state: string; describe?: DescribeEngine; diskUsage?: DescribeEngine }): void {
  router.add('GET', '/version', async () => ({
    version: process.env.npm_package_version ?? '0.1.0',
    apiVersion: API_VERSION,
    node: process.version,
    os: process.platform,
    arch: process.arch,
  }));
  router.add('GET', '/info', async (req) => ({
    root: info.root,
    state: info.state,
    pid: process.pid,
    serverVersion: process.env.npm_package_version ?? '0.1.0',
    namespace: req.ctx.namespace,
    ...(await info.describe?.(req.ctx)),
  }));
  router.add('GET', '/system/df', async (req) => (await info.diskUsage?.(req.ctx)) ?? {});
  router.add('GET', '/_ping', async () => 'OK');
}
