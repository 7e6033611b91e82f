import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchEnv } from '../lib/env.ts';
import { criClient, type CriClient } from '../lib/cri-client.ts';
import { failure, interleave, skipUnless, type Case } from '../lib/measure.ts';
import type { BenchResult } from '../lib/report.ts';

interface Engine {
  key: string;
  label: string;
  cri?: CriClient;
  /** The image as the engine's PullImage named it (kubelet passes that on). */
  image?: string;
  skip?: string;
}

/**
 * The CRI as kubelet drives it, berth beside containerd 1.6's CRI plugin,
 * through the same grpc-js client: pod start (RunPodSandbox +
 * CreateContainer + StartContainer, the image present), then
 * ListContainerStats with 50 containers running in one pod.
 */
export async function criBench(env: BenchEnv, rounds: number, opts: { count?: number } = {}): Promise<BenchResult> {
  const count = opts.count ?? 50;
  const ref = await env.image('tiny');
  const cgroupParent = await env.criCgroup();
  const cd = await env.containerdCri();
  const berth = await env.berth();
  const engines: Engine[] = [
    { key: 'berth', label: 'berth', skip: skipUnless(typeof berth === 'string' ? berth : true, 'the CRI') },
    { key: 'containerd', label: 'containerd CRI', cri: criClient(cd.socket) },
  ];
  if (typeof berth !== 'string') {
    env.journal.add({ kind: 'cri', socket: berth.criSocket });
    engines[0].cri = criClient(berth.criSocket);
  }
  const logs = path.join(env.work, 'cri-logs');
  // Pulled through each engine's own ImageService, untimed.
  for (const e of engines) {
    if (e.skip) continue;
    try {
      e.image = (await e.cri!.image('PullImage', { image: { image: ref } })).image_ref as string;
    } catch (err) {
      e.skip = failure(err);
    }
  }
  let n = 0;
  const podConfig = (e: Engine, name: string) => {
    mkdirSync(path.join(logs, e.key, name), { recursive: true });
    return {
      metadata: { name, uid: `uid-${name}`, namespace: 'bench', attempt: 0 },
      hostname: name,
      log_directory: path.join(logs, e.key, name),
      linux: { cgroup_parent: cgroupParent, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    };
  };
  const container = async (e: Engine, pod: string, config: object, name: string) => {
    const c = { metadata: { name, attempt: 0 }, image: { image: e.image }, command: ['sleep', '100000'], log_path: `${name}/0.log` };
    const id = (await e.cri!.runtime('CreateContainer', { pod_sandbox_id: pod, config: c, sandbox_config: config })).container_id as string;
    await e.cri!.runtime('StartContainer', { container_id: id });
    return id;
  };
  const removePod = async (e: Engine, id: string) => {
    await e.cri!.runtime('StopPodSandbox', { pod_sandbox_id: id });
    await e.cri!.runtime('RemovePodSandbox', { pod_sandbox_id: id });
  };
  // Each call of a pod start, from the same samples: where an engine's time goes.
  const rpcs = ['RunPodSandbox', 'CreateContainer', 'StartContainer'] as const;
  const perRpc = new Map(engines.map((e) => [e.key, rpcs.map(() => [] as number[])]));
  const podStart = (e: Engine): Case => ({
    key: `${e.key}-pod`,
    label: `${e.label}: RunPodSandbox + CreateContainer + StartContainer`,
    skip: e.skip,
    measure: async () => {
      const name = `pod-${env.tag}-${n++}`;
      const config = podConfig(e, name);
      const t = [process.hrtime.bigint()];
      let pod: string | undefined;
      try {
        pod = (await e.cri!.runtime('RunPodSandbox', { config })).pod_sandbox_id as string;
        t.push(process.hrtime.bigint());
        const c = { metadata: { name: 'c', attempt: 0 }, image: { image: e.image }, command: ['sleep', '100000'], log_path: 'c/0.log' };
        const id = (await e.cri!.runtime('CreateContainer', { pod_sandbox_id: pod, config: c, sandbox_config: config })).container_id as string;
        t.push(process.hrtime.bigint());
        await e.cri!.runtime('StartContainer', { container_id: id });
        t.push(process.hrtime.bigint());
        rpcs.forEach((_, i) => perRpc.get(e.key)![i].push(Number(t[i + 1] - t[i]) / 1e6));
        return Number(t[3] - t[0]) / 1e6;
      } finally {
        // Every pod goes after its sample, untimed.
        if (pod) await removePod(e, pod);
      }
    },
  });
  const series = await interleave(engines.map(podStart), rounds, (s) => env.log(s));
  for (const [i, rpc] of rpcs.entries()) {
    for (const e of engines) {
      const samples = perRpc.get(e.key)![i];
      series.push({ key: `${e.key}-${rpc}`, label: `${e.label}: ${rpc} (of the pod start)`, unit: 'ms', samples, ...(samples.length ? {} : { skip: e.skip ?? 'no samples' }) });
    }
  }

  // ListContainerStats with `count` containers running in one pod per engine.
  const fleets = new Map<string, string>();
  const statsCases: Case[] = engines.map((e) => ({ key: `${e.key}-stats`, label: `${e.label}: ListContainerStats, ${count} running`, skip: e.skip, measure: async () => 0 }));
  try {
    for (const [i, e] of engines.entries()) {
      if (e.skip) continue;
      try {
        const name = `fleet-${env.tag}`;
        const config = podConfig(e, name);
        const pod = (await e.cri!.runtime('RunPodSandbox', { config })).pod_sandbox_id as string;
        fleets.set(e.key, pod);
        for (let k = 0; k < count; k++) await container(e, pod, config, `c${k}`);
        env.log(`${e.label}: ${count} containers running in one pod`);
        // One untimed call: a first call may fill a cache the next ones read.
        await e.cri!.runtime('ListContainerStats', { filter: {} });
        statsCases[i].measure = async () => {
          const t0 = process.hrtime.bigint();
          const r = await e.cri!.runtime('ListContainerStats', { filter: {} });
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          if ((r.stats ?? []).length !== count) throw new Error(`ListContainerStats listed ${(r.stats ?? []).length} containers, not ${count}`);
          return ms;
        };
      } catch (err) {
        statsCases[i].skip = failure(err);
      }
    }
    series.push(...(await interleave(statsCases, rounds * 5, (s) => env.log(s))));
  } finally {
    for (const e of engines) {
      const pod = fleets.get(e.key);
      if (pod) await removePod(e, pod).catch((err: Error) => env.log(`${e.label}: removing the fleet: ${err.message}`));
      e.cri?.close();
    }
  }
  return {
    bench: 'cri',
    series,
    ratios: [
      { num: 'berth-pod', den: 'containerd-pod', target: 0.6 },
      ...rpcs.map((rpc) => ({ num: `berth-${rpc}`, den: `containerd-${rpc}` })),
      { num: 'berth-stats', den: 'containerd-stats', target: 0.5 },
    ],
    notes: [
      `same grpc-js client (the project's api.proto) for both; image present (PullImage untimed); pods on each engine's bridge (berth's default network, containerd: bridge + host-local + portmap conflist of the bench's own), cgroup_parent ${cgroupParent}`,
      "containerd's sandbox image is berth's own pause binary, served from the bench's registry and pre-pulled",
      'every pod is stopped and removed after its sample, untimed',
      'the rows "(of the pod start)" split the same samples into their three calls',
      `ListContainerStats: ${count} containers of \`sleep\` in one pod per engine, one untimed call first, then ${rounds * 5} calls interleaved`,
    ],
  };
}
