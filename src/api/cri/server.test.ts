import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { berthError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { createCriServer, CRI_PROTO_PATH, PROTO_LOADER_OPTIONS } from './server.ts';
import type { CriDeps } from './types.ts';
import { UNSERVED_RUNTIME_METHODS } from './unimplemented.ts';

/** Every method of runtime.v1 as kubelet 1.35 knows it. */
const RUNTIME_METHODS = [
  'Version', 'RunPodSandbox', 'StopPodSandbox', 'RemovePodSandbox', 'PodSandboxStatus', 'ListPodSandbox',
  'CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer', 'ListContainers', 'ContainerStatus',
  'UpdateContainerResources', 'ReopenContainerLog', 'ExecSync', 'Exec', 'Attach', 'PortForward', 'ContainerStats',
  'ListContainerStats', 'PodSandboxStats', 'ListPodSandboxStats', 'UpdateRuntimeConfig', 'Status', 'CheckpointContainer',
  'GetContainerEvents', 'ListMetricDescriptors', 'ListPodSandboxMetrics', 'RuntimeConfig', 'UpdatePodSandboxResources',
];
const IMAGE_METHODS = ['ListImages', 'ImageStatus', 'PullImage', 'RemoveImage', 'ImageFsInfo'];

describe('CRI api.proto', () => {
  const def = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as any;
  const fields = (message: string) => {
    const type = (def[`runtime.v1.${message}`] as protoLoader.MessageTypeDefinition<object, object>).type as { field: { name: string; number: number }[] };
    return Object.fromEntries(type.field.map((f) => [f.name, f.number]));
  };

  it('declares every upstream method of both services', () => {
    assert.deepEqual(Object.keys(def['runtime.v1.RuntimeService'] as object).sort(), [...RUNTIME_METHODS].sort());
    assert.deepEqual(Object.keys(def['runtime.v1.ImageService'] as object).sort(), [...IMAGE_METHODS].sort());
    assert.ok(pkg.runtime.v1.RuntimeService.service.GetContainerEvents.responseStream);
  });

  it('numbers the sandbox and container fields as upstream does', () => {
    assert.deepEqual(fields('PodSandboxConfig'), {
      metadata: 1, hostname: 2, log_directory: 3, dns_config: 4, port_mappings: 5, labels: 6, annotations: 7, linux: 8, windows: 9,
    });
    assert.deepEqual(fields('LinuxSandboxSecurityContext'), {
      namespace_options: 1, selinux_options: 2, run_as_user: 3, run_as_group: 8, readonly_rootfs: 4, supplemental_groups: 5,
      supplemental_groups_policy: 11, privileged: 6, seccomp: 9, apparmor: 10, seccomp_profile_path: 7,
    });
    assert.deepEqual(fields('LinuxContainerResources'), {
      cpu_period: 1, cpu_quota: 2, cpu_shares: 3, memory_limit_in_bytes: 4, oom_score_adj: 5, cpuset_cpus: 6, cpuset_mems: 7,
      hugepage_limits: 8, unified: 9, memory_swap_limit_in_bytes: 10,
    });
    assert.deepEqual(fields('ContainerConfig'), {
      metadata: 1, image: 2, command: 3, args: 4, working_dir: 5, envs: 6, mounts: 7, devices: 8, labels: 9, annotations: 10,
      log_path: 11, stdin: 12, stdin_once: 13, tty: 14, linux: 15, windows: 16, CDI_devices: 17, stop_signal: 18,
    });
    assert.deepEqual(fields('ImageSpec'), { image: 1, annotations: 2, user_specified_image: 18, runtime_handler: 19 });
  });

  describe('methods berth does not serve', () => {
    let dir: string;
    let server: grpc.Server;
    let runtime: any;

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-cri-server-'));
      const deps = { log: silentLogger, shutdown: new AbortController().signal } as unknown as CriDeps;
      server = createCriServer(deps);
      const address = `unix:${path.join(dir, 'cri.sock')}`;
      await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
      runtime = new pkg.runtime.v1.RuntimeService(address, grpc.credentials.createInsecure());
    });
    after(async () => {
      runtime?.close();
      await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
      await rm(dir, { recursive: true, force: true });
    });

    for (const method of UNSERVED_RUNTIME_METHODS) {
      it(`${method} answers UNIMPLEMENTED naming itself`, async () => {
        const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
          if (method === 'GetContainerEvents') {
            const stream = runtime[method]({});
            stream.on('data', () => reject(new Error('an event from an unserved method')));
            stream.on('error', resolve);
            return;
          }
          runtime[method]({}, (e: grpc.ServiceError | null) => (e ? resolve(e) : reject(new Error(`${method} answered OK`))));
        });
        assert.equal(err.code, grpc.status.UNIMPLEMENTED);
        assert.match(err.details, new RegExp(`runtime\\.v1\\.RuntimeService/${method} is not implemented`));
      });
    }
  });
});

describe('CRI calls while the engine recovers', () => {
  const def = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as any;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-cri-ready-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A CRI server whose engine recovers when the test says; its runtime client. */
  async function serve(ready: Promise<void>): Promise<{ runtime: any; close(): Promise<void> }> {
    const fine = { ready: true };
    const deps = {
      log: silentLogger,
      shutdown: new AbortController().signal,
      version: '9.9.9',
      runtimeState: { podCidrs: [] },
      readiness: async () => ({ runtime: fine, network: fine }),
      ready,
    } as unknown as CriDeps;
    const server = createCriServer(deps);
    const address = `unix:${path.join(dir, `cri-${Math.random().toString(36).slice(2)}.sock`)}`;
    await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    const runtime = new pkg.runtime.v1.RuntimeService(address, grpc.credentials.createInsecure());
    return {
      runtime,
      close: async () => {
        runtime.close();
        await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      },
    };
  }
  const call = (runtime: any, method: string) =>
    new Promise<any>((resolve, reject) => runtime[method]({}, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))));

  it('answers Version at once and holds every other call until recovery ends', async () => {
    const recovered = Promise.withResolvers<void>();
    const { runtime, close } = await serve(recovered.promise);
    try {
      let statusAnswered = false;
      const status = call(runtime, 'Status').finally(() => (statusAnswered = true));
      assert.equal((await call(runtime, 'Version')).runtime_version, '9.9.9');
      assert.equal(statusAnswered, false, 'Status answered before the engine recovered');
      recovered.resolve();
      const conditions = (await status).status.conditions.map((c: { type: string; status: boolean }) => [c.type, c.status]);
      assert.deepEqual(conditions, [['RuntimeReady', true], ['NetworkReady', true]]);
    } finally {
      await close();
    }
  });

  it("answers a call after a failed recovery with recovery's error, and Version still", async () => {
    const failed = Promise.reject(berthError('Unavailable', 'berthd could not recover its state: a test says so'));
    failed.catch(() => {});
    const { runtime, close } = await serve(failed);
    try {
      const err = await call(runtime, 'Status').then(
        () => assert.fail('Status answered OK'),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /could not recover its state: a test says so/);
      assert.equal((await call(runtime, 'Version')).runtime_name, 'berth');
    } finally {
      await close();
    }
  });
});
