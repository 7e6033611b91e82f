import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { criClient } from './cri.ts';
import { startEngine, type Engine } from './engine.ts';
import { busyboxImage, type ImageSpec } from './image-builder.ts';
import { removeCgroupParent } from './leak-probe.ts';

/**
 * A berthd with a busybox image pulled into `k8s.io` through the CRI, and
 * helpers that make pods and containers as kubelet does. `stop` removes
 * every sandbox (and so every container) it made, the log directory and
 * the engine.
 */
export interface CriPods {
  e: Engine;
  cri: ReturnType<typeof criClient>;
  /** The image's ID, as kubelet passes it after a pull. */
  image: string;
  logDir: string;
  /** The runtime's cgroup_parent in this daemon's config. */
  cgroupParent: string;
  runPod(name: string, extra?: { linux?: object; hostname?: string }): Promise<{ id: string; config: object }>;
  /** Create (and with `start`, start) a container in a pod; resolves to its id. */
  container(pod: { id: string; config: object }, name: string, cfg?: object, opts?: { start?: boolean }): Promise<string>;
  status(id: string, verbose?: boolean): Promise<any>;
  exec(id: string, cmd: string[], timeout?: number): Promise<{ stdout: string; stderr: string; exit_code: number }>;
  stop(): Promise<void>;
}

export async function startCriPods(opts: { image?: ImageSpec } = {}): Promise<CriPods> {
  // A cgroup parent of the test's own, so what it checks (and removes) is its own.
  const cgroupParent = `/berth-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const e = await startEngine({ extraConfig: `[runtime]\ncgroup_parent = "${cgroupParent}"\n` });
  const cri = criClient(path.join(e.d.state, 'cri.sock'));
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'berth-cri-logs-'));
  const ref = await e.push('cri-busybox', opts.image ?? busyboxImage([], { Cmd: ['sh'] }));
  const image = (await cri.image('PullImage', { image: { image: ref } })).image_ref as string;
  const pods = new Set<string>();
  return {
    e,
    cri,
    image,
    logDir,
    cgroupParent,
    async runPod(name, extra = {}) {
      const config = {
        metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
        hostname: extra.hostname ?? `${name}-host`,
        log_directory: path.join(logDir, name),
        linux: extra.linux ?? { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
      };
      const id = (await cri.runtime('RunPodSandbox', { config })).pod_sandbox_id as string;
      pods.add(id);
      return { id, config };
    },
    async container(pod, name, cfg = {}, opts = {}) {
      const config = { metadata: { name, attempt: 0 }, image: { image }, command: ['sleep', '1000'], log_path: `${name}/0.log`, ...cfg };
      const res = await cri.runtime('CreateContainer', { pod_sandbox_id: pod.id, config, sandbox_config: pod.config });
      assert.match(res.container_id, /^[0-9a-f]{64}$/);
      if (opts.start) await cri.runtime('StartContainer', { container_id: res.container_id });
      return res.container_id;
    },
    async status(id, verbose = false) {
      return (await cri.runtime('ContainerStatus', { container_id: id, verbose })) as any;
    },
    async exec(id, cmd, timeout = 0) {
      const r = await cri.runtime('ExecSync', { container_id: id, cmd, timeout });
      return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exit_code: r.exit_code };
    },
    async stop() {
      for (const id of pods) await cri.runtime('RemovePodSandbox', { pod_sandbox_id: id }).catch(() => {});
      cri.close();
      await e.stop();
      await rm(logDir, { recursive: true, force: true });
      await removeCgroupParent(cgroupParent);
    },
  };
}
