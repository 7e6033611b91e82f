import type http from 'node:http';
import type { EventBus } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { ImageService } from '../../images/service.ts';
import type { NetworkService } from '../../network/types.ts';
import type { ContainerQueryDeps } from '../../runtime/containers/container-queries.ts';
import type { VolumeService } from '../../runtime/volumes/volumes.ts';
import type { Builder } from '../../build/builder.ts';
import { registerBuildRoutes } from './routes-build.ts';
import { registerContainerRoutes } from './routes-containers.ts';
import { registerEventRoutes } from './routes-events.ts';
import { registerExecRoutes } from './routes-exec.ts';
import { registerFileRoutes } from './routes-files.ts';
import { registerImageRoutes } from './routes-images.ts';
import { registerNetworkRoutes } from './routes-networks.ts';
import { registerSystemRoutes, type SystemDeps } from './routes-system.ts';
import { registerVolumeRoutes } from './routes-volumes.ts';
import { createDockerServer, DockerRouter } from './server.ts';

/**
 * The Docker Engine API front door: every route on one server, not yet
 * listening (daemon/ binds it). Whatever is not routed answers 501.
 */
export interface DockerApiDeps extends SystemDeps, ContainerQueryDeps {
  images: ImageService;
  volumes: VolumeService;
  network: NetworkService;
  events: EventBus;
  log: Logger;
  /** Aborted when the daemon shuts down; every request's signal follows it. */
  shutdown: AbortSignal;
  /** `POST /build` and `/build/prune`; without it they answer 501. */
  builder?: Builder;
  /** The end of the engine's recovery at start; see createDockerServer. */
  ready?: Promise<void>;
}

export function createDockerApi(deps: DockerApiDeps): http.Server {
  return createDockerServer({ router: dockerRoutes(deps), log: deps.log, shutdown: deps.shutdown, ready: deps.ready });
}

/** The door's router with every route; registering only captures `deps`. */
export function dockerRoutes(deps: DockerApiDeps): DockerRouter {
  const router = new DockerRouter();
  registerSystemRoutes(router, deps);
  registerImageRoutes(router, deps.images);
  registerContainerRoutes(router, deps);
  registerExecRoutes(router, deps.containers);
  registerFileRoutes(router, deps.containers);
  registerVolumeRoutes(router, deps.volumes);
  registerNetworkRoutes(router, deps.network, deps.containers);
  registerEventRoutes(router, deps);
  if (deps.builder) registerBuildRoutes(router, deps.builder);
  return router;
}
