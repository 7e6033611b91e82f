import { freePort, randomSubnet, type BenchEnv } from '../lib/env.ts';
import { berthSetup, interleave, skipUnless, waitForHttp, type Case } from '../lib/measure.ts';
import { seriesMedian, type BenchResult, type Series } from '../lib/report.ts';
import type { Tool } from '../lib/env.ts';

/**
 * A container on a bridge network with a published port: the time from
 * `run -d` until busybox httpd inside answers on 127.0.0.1:PORT, beside the
 * time `run -d --network none` of the same server takes to return. The
 * difference, per round, is what networking costs.
 */
export async function networkBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const ref = await env.image('tiny');
  const { podman } = await env.podman();
  const net = await env.podmanNetwork();
  await podman.must(['pull', '-q', '--tls-verify=false', ref]);
  const berth = await env.berth();
  const b = typeof berth === 'string' ? undefined : berth;
  let berthSkip = skipUnless(typeof berth === 'string' ? berth : (await berth.has('pull')) && (await berth.has('run')) && (await berth.has('rm')), 'berth run/rm');
  let berthNet = 'bridge';
  let berthNote = "berth's default bridge network";
  berthSkip = await berthSetup(berthSkip, async () => {
    await b!.cli.must(['pull', ref]);
    if (await b!.has('network create')) {
      berthNet = `berthbench${env.tag}`;
      const subnet = `${randomSubnet()}.0/24`;
      env.journal.add({ kind: 'cmd', argv: [b!.cli.bin, ...b!.cli.prefix, 'network', 'rm', berthNet] });
      await b!.cli.must(['network', 'create', '--subnet', subnet, berthNet]);
      berthNote = `user bridge network ${berthNet} (${subnet})`;
    }
  });
  let n = 0;
  const httpd = ['httpd', '-f', '-p', '80', '-h', '/www'];
  const rm = async (tool: Tool, name: string, args: string[]) => void (await tool.run(['rm', '-f', ...args, name]));
  const returned: Record<string, number[]> = { berth: [], podman: [] };
  const bridged = (tool: Tool, network: string, rmArgs: string[], key: string) => async () => {
    const name = `net-${env.tag}-${n++}`;
    const port = await freePort();
    const t0 = process.hrtime.bigint();
    const r = await tool.must(['run', '-d', '--name', name, '--network', network, '-p', `127.0.0.1:${port}:80`, ref, ...httpd]);
    try {
      returned[key].push(r.ms);
      return await waitForHttp(port, t0);
    } finally {
      await rm(tool, name, rmArgs);
    }
  };
  const none = (tool: Tool, rmArgs: string[]) => async () => {
    const name = `none-${env.tag}-${n++}`;
    try {
      return (await tool.must(['run', '-d', '--name', name, '--network', 'none', ref, ...httpd])).ms;
    } finally {
      await rm(tool, name, rmArgs);
    }
  };
  const cases: Case[] = [
    { key: 'berth-bridge', label: 'berth: bridge + port, until it answers', skip: berthSkip, note: berthNote, measure: bridged(b?.cli as Tool, berthNet, [], 'berth') },
    { key: 'berth-none', label: 'berth: run -d --network none', skip: berthSkip, measure: none(b?.cli as Tool, []) },
    { key: 'podman-bridge', label: 'podman: bridge + port, until it answers', note: `netavark network ${net.name} on ${net.iface} (${net.subnet})`, measure: bridged(podman, net.name, ['-t', '0'], 'podman') },
    { key: 'podman-none', label: 'podman: run -d --network none', measure: none(podman, ['-t', '0']) },
  ];
  const series = await interleave(cases, rounds, (s) => env.log(s));
  const cost = (e: string): Series => {
    const br = series.find((s) => s.key === `${e}-bridge`)!;
    const no = series.find((s) => s.key === `${e}-none`)!;
    const k = Math.min(br.samples.length, no.samples.length);
    return {
      key: `${e}-cost`,
      label: `${e}: added cost of networking`,
      unit: 'ms',
      samples: Array.from({ length: k }, (_, i) => br.samples[i] - no.samples[i]),
      skip: br.skip ?? no.skip,
    };
  };
  for (const e of ['berth', 'podman']) {
    const br = series.find((s) => s.key === `${e}-bridge`)!;
    const i = series.indexOf(br);
    series.splice(i + 1, 0, { key: `${e}-bridge-return`, label: `${e}: bridge + port, run -d returns`, unit: 'ms', samples: returned[e], skip: br.skip });
  }
  series.push(cost('berth'), cost('podman'));
  const result: BenchResult = {
    bench: 'network',
    series,
    ratios: [
      { num: 'berth-cost', den: 'podman-cost', target: 1 },
      { num: 'berth-bridge', den: 'podman-bridge' },
    ],
    notes: [
      'added cost = (time until httpd answers through the published port) - (time `run -d --network none` takes), per round; containers removed after each sample, untimed',
    ],
  };
  const diff = (e: string) => seriesMedian(result, `${e}-bridge`) - seriesMedian(result, `${e}-none`);
  result.notes.push(`difference of the medians instead: berth ${diff('berth').toFixed(1)} ms, podman ${diff('podman').toFixed(1)} ms`);
  return result;
}
