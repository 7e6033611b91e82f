import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Tool, type BenchEnv } from '../lib/env.ts';
import { berthSetup, interleave, skipUnless, type Case } from '../lib/measure.ts';
import { have } from '../lib/proc.ts';
import type { BenchResult } from '../lib/report.ts';

/**
 * `docker run --rm IMG true` with the docker CLI through berth's Docker
 * socket and through `podman system service`'s, beside `berth run --rm
 * IMG true`: what the Docker door costs over the engine, and against
 * podman's compat API.
 */
export async function dockerBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const ref = await env.image('tiny');
  const { podman } = await env.podman();
  // podman's default network is a bridge of the bench's own (containers.conf names it).
  await env.podmanNetwork();
  await podman.must(['pull', '-q', '--tls-verify=false', ref]);
  const svc = await env.podmanService();
  const dockerConfig = path.join(env.work, 'docker-cli');
  mkdirSync(dockerConfig, { recursive: true });
  const docker = (socket: string) => new Tool('docker', ['-H', `unix://${socket}`], { DOCKER_CONFIG: dockerConfig });
  const berth = await env.berth();
  const b = typeof berth === 'string' ? undefined : berth;
  let berthSkip = skipUnless(typeof berth === 'string' ? berth : (await berth.has('pull')) && (await berth.has('run')), 'berth run');
  berthSkip = await berthSetup(berthSkip, () => b!.cli.must(['pull', ref]));
  const dockerSkip = (await have('docker')) ? undefined : 'the docker CLI is not installed';
  const viaBerth = b ? docker(b.dockerSocket) : undefined;
  const viaPodman = docker(svc.socket);
  // podman's compat API ignores containers.conf's default_ulimits and asks
  // runc for rlimits above the hard limit root may not raise here (no
  // CAP_SYS_RESOURCE): every command names the same ones, so all three stay alike.
  const ulimits = ['--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=4096:4096'];
  const cmd = ['run', '--rm', ...ulimits, ref, 'true'];
  const cases: Case[] = [
    { key: 'berth-docker', label: 'docker run --rm, berth Docker socket', skip: berthSkip ?? dockerSkip, measure: async () => (await viaBerth!.must(cmd)).ms },
    { key: 'podman-docker', label: 'docker run --rm, podman system service', skip: dockerSkip, measure: async () => (await viaPodman.must(cmd)).ms },
    { key: 'berth-cli', label: 'berth run --rm', skip: berthSkip, measure: async () => (await b!.cli.must(cmd)).ms },
  ];
  return {
    bench: 'docker',
    series: await interleave(cases, rounds, (s) => env.log(s)),
    ratios: [
      { num: 'berth-docker', den: 'podman-docker', target: 0.25 },
      { num: 'berth-docker', den: 'berth-cli', target: 1.5 },
    ],
    notes: [
      "the same docker CLI for both sockets, each engine's default network (berth: its bridge; podman: a netavark bridge of the bench's own); image present in both stores",
      `podman service: ${podman.bin} system service --time 0 on the bench's podman roots`,
      `every command: ${cmd.slice(0, -2).join(' ')} IMG true`,
    ],
  };
}
