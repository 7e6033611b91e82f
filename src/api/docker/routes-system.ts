import os from 'node:os';
import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { ImageService } from '../../images/service.ts';
import { listContainers, type ContainerQueryDeps } from '../../runtime/containers/container-queries.ts';
import type { VolumeService } from '../../runtime/volumes/volumes.ts';
import { volumeView } from './routes-volumes.ts';
import { ok, type DockerRouter } from './server.ts';
import { API_VERSION, MIN_API_VERSION } from './version.ts';

/** What `GET /info` needs from the engine: the same description the native API's info gives; `system df` the disk usage report. */
export interface SystemDeps {
  root: string;
  describe(ctx: Ctx): Promise<Record<string, unknown>>;
  /** What volumes take on disk and how many containers use each, and the build cache's records (the native API's `system df`). */
  diskUsage?(ctx: Ctx): Promise<{ Volumes: Array<{ Name: string; UsageData: { Size: number; RefCount: number } }>; BuildCache?: Array<{ Size: number }> }>;
}

const DF_TYPES = ['container', 'image', 'volume', 'build-cache'];

const engineVersion = () => process.env.npm_package_version ?? '0.1.0';
/** Go's names for architectures, as docker reports them. */
const goArch = (): string => ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' })[process.arch as string] ?? process.arch;

/** `/_ping`, `/version`, `/info` and `/system/df` (`/build/prune` is the builder's, in routes-build.ts). */
export function registerSystemRoutes(router: DockerRouter, deps: SystemDeps & ContainerQueryDeps & { images: ImageService; volumes: VolumeService }): void {
  // docker system df (API 1.42+ may ask for some types only).
  router.add('GET', '/system/df', async (req) => {
    const types = req.query.getAll('type');
    for (const t of types) if (!DF_TYPES.includes(t)) throw berthError('InvalidArgument', `unknown object type: ${t}`);
    const want = (t: string) => types.length === 0 || types.includes(t);
    const out: Record<string, unknown> = {};
    if (want('image')) {
      const images = await deps.images.list(req.ctx, { all: true });
      // Each image's own layers are counted once per image: berth does not tell layers shared between images apart.
      out.LayersSize = images.reduce((n, i) => n + i.Size, 0);
      out.Images = images.map((i) => ({ ...i, SharedSize: 0 }));
    }
    if (want('container')) out.Containers = await listContainers(req.ctx, deps, { all: true, size: true });
    if (want('volume')) {
      const usage = new Map(((await deps.diskUsage?.(req.ctx))?.Volumes ?? []).map((v) => [v.Name, v.UsageData]));
      out.Volumes = (await deps.volumes.list(req.ctx)).map((v) => ({ ...volumeView(v), UsageData: usage.get(v.name) ?? { Size: -1, RefCount: -1 } }));
    }
    if (want('build-cache')) out.BuildCache = (await deps.diskUsage?.(req.ctx))?.BuildCache ?? [];
    return ok(out);
  });

  router.add('GET', '/_ping', async () => ({
    body: 'OK',
    headers: { 'docker-experimental': 'false', 'builder-version': '1', 'cache-control': 'no-cache, no-store, must-revalidate', pragma: 'no-cache' },
  }));

  router.add('GET', '/version', async () => {
    const details = {
      ApiVersion: API_VERSION,
      Arch: goArch(),
      BuildTime: '',
      Experimental: 'false',
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      KernelVersion: os.release(),
      MinAPIVersion: MIN_API_VERSION,
      Os: 'linux',
    };
    return ok({
      Platform: { Name: 'berth' },
      Components: [{ Name: 'Engine', Version: engineVersion(), Details: details }],
      Version: engineVersion(),
      ...details,
      Experimental: false,
    });
  });

  router.add('GET', '/info', async (req) => {
    const e = await deps.describe(req.ctx);
    const runtimes = Object.fromEntries(((e.runtimes as string[] | undefined) ?? ['runc']).map((r) => [r, { path: r }]));
    return ok({
      ID: '',
      Containers: e.containers ?? 0,
      ContainersRunning: e.containersRunning ?? 0,
      ContainersPaused: e.containersPaused ?? 0,
      ContainersStopped: e.containersStopped ?? 0,
      Images: e.images ?? 0,
      Driver: e.storageDriver ?? '',
      DriverStatus: [],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file'] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: e.loggingDriver ?? 'json-file',
      CgroupDriver: e.cgroupDriver ?? 'cgroupfs',
      CgroupVersion: e.cgroupVersion ?? '1',
      NEventsListener: 0,
      KernelVersion: e.kernelVersion ?? os.release(),
      OperatingSystem: e.operatingSystem ?? 'Linux',
      OSVersion: '',
      OSType: 'linux',
      Architecture: e.architecture ?? os.machine(),
      IndexServerAddress: '',
      RegistryConfig: null,
      NCPU: e.cpus ?? os.availableParallelism(),
      MemTotal: e.memTotal ?? os.totalmem(),
      DockerRootDir: deps.root,
      Name: e.name ?? os.hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: engineVersion(),
      Runtimes: runtimes,
      DefaultRuntime: e.defaultRuntime ?? 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      // berth's containers outlive berthd: a restart leaves them running.
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: '',
      SecurityOptions: ['name=seccomp,profile=builtin'],
      Warnings: [],
    });
  });
}
