import type { ConfigSection } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Router } from '../api/native/server.ts';
import type { Config } from './config.ts';
import { daemonSection } from './config.ts';
import { registerSystemRoutes } from '../api/native/routes-system.ts';

/**
 * The composition root: every service is constructed here, in one readable
 * place, from typed config sections. Nothing else imports daemon/.
 */
export interface Services {
  close(): Promise<void>;
}

export function allSections(): ConfigSection[] {
  return [daemonSection];
}

export async function wireServices(opts: { cfg: Config; log: Logger; router: Router; shutdown: AbortSignal }): Promise<Services> {
  const { cfg, router } = opts;
  const d = cfg.sections.daemon;
  registerSystemRoutes(router, { root: d.root as string, state: d.state as string });
  return {
    async close() {},
  };
}
