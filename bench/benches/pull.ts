import type { BenchEnv, Berth } from '../lib/env.ts';
import { berthSetup, interleave, skipUnless, type Case } from '../lib/measure.ts';
import { must, run } from '../lib/proc.ts';
import type { BenchResult } from '../lib/report.ts';
import { nodeBin } from '../lib/env.ts';

/** Removes every image and its content and snapshots from berth's store, so the next pull is cold. */
async function wipeBerth(env: BenchEnv, b: Berth, ref: string): Promise<void> {
  if (await b.has('rmi')) {
    await b.cli.run(['rmi', '-f', ref]);
    if (await b.has('image prune')) await b.cli.run(['image', 'prune', '-a', '-f']);
    const du = await run('du', ['-sm', b.root]);
    if (Number(du.stdout.split('\t')[0]) < 20) return;
    env.log(`berth root still holds ${du.stdout.split('\t')[0]} MB after rmi; starting berthd on a fresh root instead`);
  }
  await b.restartFresh();
}

async function wipeContainerd(env: BenchEnv, ref: string): Promise<void> {
  const { ctr } = await env.containerd();
  await ctr.run(['images', 'rm', '--sync', ref]);
  const left = (await ctr.must(['content', 'ls', '-q'])).stdout.trim();
  const snaps = (await ctr.must(['snapshots', 'ls'])).stdout.trim().split('\n').slice(1).filter(Boolean);
  if (left || snaps.length) throw new Error(`containerd kept ${left.split('\n').length} blobs and ${snaps.length} snapshots after rmi --sync`);
}

async function wipePodman(env: BenchEnv): Promise<void> {
  const { podman } = await env.podman();
  await podman.must(['rmi', '-a', '-f']);
}

/** Cold pull-and-unpack of the big image and a re-pull of the present image, berth beside containerd and podman. */
export async function pullBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const ref = await env.image('big');
  const { ctr } = await env.containerd();
  const { podman } = await env.podman();
  const berth = await env.berth();
  const b = typeof berth === 'string' ? undefined : berth;
  const berthSkip = skipUnless(typeof berth === 'string' ? berth : await berth.has('pull'), 'berth pull');
  const sync = async () => void (await run('sync', []));
  // Store size after a cold pull (untimed): shows that each engine really
  // unpacked (content + snapshots), not just fetched.
  const sizes: Record<string, number[]> = { berth: [], containerd: [], podman: [] };
  const sized = async (engine: string, dir: () => string, ms: number) => {
    const du = await run('du', ['-sm', dir()]);
    sizes[engine].push(Number(du.stdout.split('\t')[0]));
    return ms;
  };
  const mnt = await env.fs();
  const cold: Case[] = [
    {
      key: 'berth-cold',
      label: 'berth pull (cold)',
      skip: berthSkip,
      prepare: async () => {
        await wipeBerth(env, b!, ref);
        await sync();
      },
      measure: async () => sized('berth', () => b!.root, (await b!.cli.must(['pull', ref])).ms),
    },
    {
      key: 'containerd-cold',
      label: 'ctr images pull (cold)',
      prepare: async () => {
        await wipeContainerd(env, ref);
        await sync();
      },
      measure: async () => sized('containerd', () => `${mnt}/containerd/root`, (await ctr.must(['images', 'pull', '--plain-http', ref])).ms),
    },
    {
      key: 'podman-cold',
      label: 'podman pull (cold)',
      prepare: async () => {
        await wipePodman(env);
        await sync();
      },
      measure: async () => sized('podman', () => `${mnt}/podman/root`, (await podman.must(['pull', '--tls-verify=false', ref])).ms),
    },
  ];
  const warm: Case[] = [
    { key: 'berth-warm', label: 'berth pull (present)', skip: berthSkip, prepare: sync, measure: async () => (await b!.cli.must(['pull', ref])).ms },
    { key: 'containerd-warm', label: 'ctr images pull (present)', prepare: sync, measure: async () => (await ctr.must(['images', 'pull', '--plain-http', ref])).ms },
    { key: 'podman-warm', label: 'podman pull (present)', prepare: sync, measure: async () => (await podman.must(['pull', '--tls-verify=false', ref])).ms },
  ];
  const series = [...(await interleave(cold, rounds, (s) => env.log(s))), ...(await interleave(warm, Math.max(rounds, 5), (s) => env.log(s)))];
  for (const [engine, mb] of Object.entries(sizes)) {
    if (mb.length) series.push({ key: `${engine}-store-mb`, label: `${engine}: store size after a cold pull`, unit: 'MB', samples: mb });
  }
  return {
    bench: 'pull',
    series,
    ratios: [
      { num: 'berth-cold', den: 'containerd-cold', target: 0.42 },
      { num: 'berth-cold', den: 'podman-cold' },
      { num: 'berth-warm', den: 'containerd-warm' },
      { num: 'berth-warm', den: 'podman-warm' },
    ],
    notes: [
      `image ${ref}: 8 gzip layers, ~306 MB compressed, ~420 MB unpacked; stores on one journaled ext4 (loop device)`,
      'cold = store emptied before each sample (berth: rmi, or a fresh root; containerd: images rm --sync, content and snapshots checked empty; podman: rmi -a -f); `sync` before each sample',
      "durability: berth answers once its layers are committed under a synced write-behind mark, and their syncfs runs behind the answer (inside the next sample's untimed `sync`); containerd fsyncs each blob and, by default, none of what it unpacks",
    ],
  };
}

/** Listing latency with the big image present: berth images, ctr images ls, podman images, and Node's own start-up. */
export async function imagesBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const ref = await env.image('big');
  const { ctr } = await env.containerd();
  const { podman } = await env.podman();
  const berth = await env.berth();
  const b = typeof berth === 'string' ? undefined : berth;
  let berthSkip = skipUnless(typeof berth === 'string' ? berth : (await berth.has('images')) && (await berth.has('pull')), 'berth images/pull');
  if ((await ctr.must(['images', 'ls', '-q'])).stdout.trim() === '') await ctr.must(['images', 'pull', '--plain-http', ref]);
  if ((await podman.must(['images', '-q'])).stdout.trim() === '') await podman.must(['pull', '-q', '--tls-verify=false', ref]);
  berthSkip = await berthSetup(berthSkip, () => b!.cli.must(['pull', ref]));
  const cases: Case[] = [
    { key: 'berth', label: 'berth images', skip: berthSkip, measure: async () => (await b!.cli.must(['images'])).ms },
    {
      key: 'berth-node',
      label: 'berth images, Node CLI (BERTH_CLI_LOCAL=1)',
      skip: berthSkip,
      measure: async () => (await b!.cli.must(['images'], { env: { BERTH_CLI_LOCAL: '1' } })).ms,
    },
    { key: 'ctr', label: 'ctr images ls', measure: async () => (await ctr.must(['images', 'ls'])).ms },
    { key: 'podman', label: 'podman images', measure: async () => (await podman.must(['images'])).ms },
    { key: 'node', label: 'node -e 0 (pinned Node start-up)', measure: async () => (await must(nodeBin, ['-e', '0'])).ms },
  ];
  return {
    bench: 'images',
    series: await interleave(cases, rounds, (s) => env.log(s)),
    ratios: [{ num: 'berth', den: 'podman', target: 1 }, { num: 'berth', den: 'ctr' }, { num: 'berth-node', den: 'podman' }, { num: 'berth-node', den: 'node' }],
    notes: [
      'each listing shows the one big image; the target is a listing faster than podman\'s',
      'berth images = the native client, whose command berthd runs; the Node CLI row is the same command in a Node process of its own',
    ],
  };
}
