import os from 'node:os';
import type { Ctx } from '../../core/context.ts';
import { ok, type DockerRouter } from './server.ts';
import { API_VERSION, MIN_API_VERSION } from './version.ts';

/** What `GET /info` needs from the engine: the same description the native API's info gives. */
export interface SystemDeps {
  root: string;
  describe(ctx: Ctx): Promise<Record<string, unknown>>;
}

const engineVersion = () => process.env.npm_package_version ?? '0.1.0';
/** Go's names for architectures, as docker reports them. */
const goArch = (): string => ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' })[process.arch as string] ?? process.arch;

/** `/_ping`, `/version` and `/info`. */
export function registerSystemRoutes(router: DockerRouter, deps: SystemDeps): void {
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
