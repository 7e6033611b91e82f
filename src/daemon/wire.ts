import type { ConfigSection } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Router } from '../api/native/server.ts';
import type { Config } from './config.ts';
import { daemonSection } from './config.ts';
import { registrySection } from '../distribution/config.ts';
import { registerSystemRoutes } from '../api/native/routes-system.ts';
import { registerNetworkRoutes } from '../api/native/routes-networks.ts';
import { rootCtx } from '../core/context.ts';
import { MetadataDb } from '../metadata/db.ts';
import { NetworkStore } from '../metadata/networks.ts';
import { networkConfig, networkSection } from '../network/config.ts';
import { runtimeSection } from '../runtime/task-config.ts';
import { CniNetworkService } from '../network/service.ts';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { imagesSection } from '../images/config.ts';
import { registerImageRoutes } from '../api/native/routes-images.ts';
import { wireImages } from './images-wiring.ts';

/**
 * The composition root: every service is constructed here, in one readable
 * place, from typed config sections. Nothing else imports daemon/.
 */
export interface Services {
  close(): Promise<void>;
}

export function allSections(): ConfigSection[] {
  return [daemonSection, networkSection, imagesSection, registrySection, runtimeSection];
}

export async function wireServices(opts: { cfg: Config; log: Logger; router: Router; shutdown: AbortSignal }): Promise<Services> {
  const { cfg, router } = opts;
  const d = cfg.sections.daemon;
  registerSystemRoutes(router, { root: d.root as string, state: d.state as string });
  await mkdir(d.root as string, { recursive: true });
  const db = new MetadataDb(path.join(d.root as string, 'metadata.db'));
  const startCtx = rootCtx({ log: opts.log, signal: opts.shutdown });
  const network = new CniNetworkService({
    store: new NetworkStore(db),
    config: networkConfig(cfg.sections.network),
    dataDir: path.join(d.root as string, 'network'),
    netnsDir: path.join(d.state as string, 'netns'),
  });
  await network.init(startCtx);
  // Until a container service exists no container is running: everything left over is reclaimed.
  await network.reconcile(startCtx, []);
  registerNetworkRoutes(router, network);
  const images = await wireImages({ db, root: d.root as string, state: d.state as string, log: opts.log, images: cfg.sections.images, registry: cfg.sections.registry });
  registerImageRoutes(router, images.images);
  return {
    async close() {
      await images.close();
      db.close();
    },
  };
}
