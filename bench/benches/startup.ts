import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomSubnet, type BenchEnv, type Daemon } from '../lib/env.ts';
import { grpcAnswers, httpAnswers, timeUntil } from '../lib/cri-client.ts';
import { interleave, memOf, type Case } from '../lib/measure.ts';
import { sleep } from '../lib/proc.ts';
import { containerdToml } from '../lib/peer-config.ts';
import { addSamples, type BenchResult, type Series } from '../lib/report.ts';

interface Starter {
  key: string;
  label: string;
  skip?: string;
  /** Starts the daemon and resolves once it answers: the ms from spawn, and the daemon to stop. */
  start(): Promise<{ ms: number; daemon: Daemon; parts?: Record<string, number> }>;
}

/**
 * berthd and containerd as a host starts them, each on roots of its own
 * that persist across rounds (the first start, which creates them, is
 * untimed): berthd until its native, CRI and Docker sockets all answer,
 * containerd until its socket answers a Version call, with its CRI plugin
 * on (what a Kubernetes node runs, as berthd serves the CRI) and off.
 */
// One set per run: memory's fresh rows and the startup bench share the daemons' roots and configs.
const made = new WeakMap<BenchEnv, Promise<Starter[]>>();
function starters(env: BenchEnv): Promise<Starter[]> {
  if (!made.has(env)) made.set(env, makeStarters(env));
  return made.get(env)!;
}

async function makeStarters(env: BenchEnv): Promise<Starter[]> {
  const mnt = await env.fs();
  const runFs = await env.runFs();
  const berth = await env.berth();
  const out: Starter[] = [];
  if (typeof berth === 'string') {
    out.push({ key: 'berthd', label: 'berthd', skip: berth, start: () => Promise.reject(new Error(berth)) });
  } else {
    const root = path.join(mnt, 'berth-startup');
    const state = path.join(runFs, 'berth-startup');
    const cfg = path.join(env.work, 'berth-startup.toml');
    const bridge = `bbs${env.tag}`;
    env.journal.add({ kind: 'link', name: bridge });
    // A bridge and cgroup parent of its own: its start-up recovery must never meet the other berthd's containers.
    const cgroup = `/berth-bench-startup-${env.tag}`;
    env.journal.add({ kind: 'cgroup', name: cgroup });
    writeFileSync(cfg, `version = 1\n[network]\nbridge = "${bridge}"\nsubnet = "${randomSubnet()}.0/24"\n[runtime]\ncgroup_parent = "${cgroup}"\n${process.env.BERTH_BENCH_CONFIG ?? ''}\n`);
    const sock = path.join(state, 'berth.sock');
    out.push({
      key: 'berthd',
      label: 'berthd: start until native, CRI and Docker sockets answer',
      start: async () => {
        const t0 = process.hrtime.bigint();
        const daemon = await env.spawnDaemon('berthd-startup', berth.daemonBin, ['--root', root, '--state', state, '--address', sock, '--config', cfg, '--log-level', 'warn'], async () => true);
        // Each socket in turn; the last to answer sets the figure, the others are kept to show where the time goes.
        const native = await timeUntil(() => httpAnswers(sock, '/_ping'), t0, 'berthd native socket');
        const cri = await timeUntil(() => grpcAnswers(path.join(state, 'cri.sock'), '/runtime.v1.RuntimeService/Version'), t0, 'berthd CRI socket');
        const ms = await timeUntil(() => httpAnswers(path.join(state, 'docker.sock'), '/_ping'), t0, 'berthd Docker socket');
        return { ms, daemon, parts: { native, cri } };
      },
    });
  }
  const cni = await env.cniNetwork('startup-cni', `bbt${env.tag}`);
  for (const withCri of [true, false]) {
    const key = withCri ? 'containerd-cri' : 'containerd';
    const dir = path.join(mnt, `${key}-startup`);
    const state = path.join(runFs, `${key}-startup`);
    const sock = path.join(state, 'containerd.sock');
    mkdirSync(state, { recursive: true });
    const cfg = path.join(env.work, `${key}-startup.toml`);
    const cri = withCri ? { cniConfDir: cni.confDir, cniBinDir: '/usr/lib/cni', sandboxImage: await env.image('pause') } : undefined;
    writeFileSync(cfg, containerdToml({ root: `${dir}/root`, state: `${state}/state`, socket: sock, cri }));
    out.push({
      key,
      label: `containerd${withCri ? ' (CRI plugin on)' : ' (CRI plugin off)'}: start until Version answers`,
      start: async () => {
        const t0 = process.hrtime.bigint();
        const daemon = await env.spawnDaemon(`${key}-startup`, 'containerd', ['--config', cfg], async () => true);
        const ms = await timeUntil(() => grpcAnswers(sock, '/containerd.services.version.v1.Version/Version'), t0, key);
        return { ms, daemon };
      },
    });
  }
  env.hostDirs(['/run/containerd/fifo', '/run/containerd/s', '/run/containerd', '/run/netns', '/var/lib/cni/results', '/var/lib/cni']);
  return out;
}

/** Start-to-ready of berthd beside containerd's, each daemon stopped after its sample. */
export async function startupBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const list = await starters(env);
  for (const s of list) {
    if (s.skip) continue;
    const { daemon } = await s.start();
    await env.stopDaemon(daemon);
  }
  const parts = new Map<string, number[]>();
  const cases: Case[] = list.map((s) => ({
    key: s.key,
    label: s.label,
    skip: s.skip,
    measure: async () => {
      const r = await s.start();
      await env.stopDaemon(r.daemon);
      for (const [k, v] of Object.entries(r.parts ?? {})) parts.set(k, [...(parts.get(k) ?? []), v]);
      return r.ms;
    },
  }));
  const series = await interleave(cases, rounds, (s) => env.log(s));
  const berthd = series.find((s) => s.key === 'berthd');
  for (const [i, [k, samples]] of [...parts].entries()) series.splice(1 + i, 0, { key: `berthd-${k}`, label: `berthd: start until the ${k === 'cri' ? 'CRI' : k} socket answers`, unit: 'ms', samples, skip: berthd?.skip });
  return {
    bench: 'startup',
    series,
    ratios: [
      { num: 'berthd', den: 'containerd-cri', target: 1 },
      { num: 'berthd', den: 'containerd' },
    ],
    notes: [
      'each daemon on roots of its own, created by an untimed first start; runtime state on the tmpfs; polled every 5 ms, a fresh gRPC channel per attempt',
      "berthd's CRI answers its first client only once gRPC is loaded: that load is in the figure",
    ],
  };
}

/**
 * Each daemon's RSS and PSS fresh: started on its startup roots, measured
 * 2 s after it answers, with nothing asked of it since.
 */
export async function freshMemory(env: BenchEnv, afterBigPull: boolean, rounds = 1): Promise<{ series: Series[]; notes: string[] }> {
  const series: Series[] = [];
  const MiB = (kib: number) => kib / 1024;
  // Each round starts every daemon afresh, one after another.
  for (let r = 0; r < rounds; r++) {
    for (const s of await starters(env)) {
      if (s.skip) {
        if (r === 0) series.push({ key: `${s.key}-fresh-rss`, label: `${s.key}: RSS fresh`, unit: 'MiB', samples: [], skip: s.skip });
        continue;
      }
      const { daemon } = await s.start();
      try {
        await sleep(2000);
        const m = memOf(daemon.pid);
        addSamples(series, [
          { key: `${s.key}-fresh-rss`, label: `${s.key}: RSS fresh`, unit: 'MiB', samples: [MiB(m.rssKiB)] },
          { key: `${s.key}-fresh-pss`, label: `${s.key}: PSS fresh`, unit: 'MiB', samples: [MiB(m.pssKiB)] },
        ]);
      } finally {
        await env.stopDaemon(daemon);
      }
    }
  }
  series.push({ key: 'limit-fresh', label: "issue 14's limit for berthd fresh", unit: 'MiB', samples: [48] });
  if (afterBigPull) series.push({ key: 'limit-idle', label: "issue 14's limit for berthd idle after the big pull", unit: 'MiB', samples: [64] });
  return {
    series,
    notes: [
      "fresh = 2 s after the daemon answers (berthd: all three sockets, its CRI's gRPC loaded by that probe; containerd: Version), nothing asked since; berthd's fresh RSS is held to issue 14's 48 MiB",
      afterBigPull
        ? "berth's daemon idle row comes after the big pull (the pull bench ran first): its RSS is held to issue 14's 64 MiB"
        : "berth's daemon idle row is not after the big pull here (run `all` for issue 14's 64 MiB after it)",
    ],
  };
}
