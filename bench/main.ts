import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { imagesBench, pullBench } from './benches/pull.ts';
import { networkBench } from './benches/network.ts';
import { run50Bench, runBench } from './benches/run.ts';
import { criBench } from './benches/cri.ts';
import { dockerBench } from './benches/docker.ts';
import { startupBench } from './benches/startup.ts';
import { buildBench } from './benches/build.ts';
import { readJournal, startTimeOf } from './lib/cleanup.ts';
import { BenchEnv, projectRoot } from './lib/env.ts';
import { interrupted, run } from './lib/proc.ts';
import { printResult, printSummary, writeResult, type BenchResult } from './lib/report.ts';

/**
 * The bench harness: berth beside containerd, podman and runc, in one run on
 * the same images and filesystem. `sh bench/run.sh [pull|images|run|run50|
 * memory|network|cri|docker|startup|build|all]`; see bench/README.md.
 */
const usage = `Usage: sh bench/run.sh [pull|images|run|run50|memory|network|cri|docker|startup|build|all] [--rounds N]

  pull      cold pull-and-unpack of a ~400 MB, 8-layer image, and re-pull of a present one
  images    listing latency with the image present
  run       run --rm of \`true\` (and raw runc as the floor; ctr --cni beside the default bridge)
  run50     50 containers started detached one after another, then removed
  memory    daemon memory fresh and idle, and the memory each running container adds (50 sleeping)
  network   bridge network + published port until it answers, and the cost over --network none
  cri       CRI pod start and ListContainerStats with 50 running, against containerd's CRI plugin
  docker    docker run --rm through berth's Docker socket, podman's service, and berth run --rm
  startup   daemon start until every socket answers, against containerd
  build     a two-stage Dockerfile (COPY of 2,000 files, three RUNs) cold and with one file changed, against podman build
  all       everything above (run50 and memory share their containers)

  --rounds N   samples per case (defaults: pull 3, images 15, run 10, run50 2, memory 1, network 5, cri 5, docker 10, startup 5, build 3)
`;

const BENCHES = ['pull', 'images', 'run', 'run50', 'memory', 'network', 'cri', 'docker', 'startup', 'build'] as const;

async function versions(): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[]) => (await run(cmd, args).catch(() => undefined))?.stdout.split('\n')[0].trim() ?? '';
  return {
    containerd: await v('containerd', ['--version']),
    podman: await v('podman', ['--version']),
    runc: await v('runc', ['--version']),
    conmon: await v('conmon', ['--version']),
    node: process.version,
    berth: await v('git', ['-C', process.env.BERTH_BENCH_CHECKOUT || projectRoot, 'describe', '--always', '--dirty']),
  };
}

/** Work dirs of other bench runs whose daemons are still alive: they would distort this run's figures. */
function otherRuns(mine: string): string[] {
  const tmp = path.dirname(mine);
  return readdirSync(tmp)
    .filter((d) => d.startsWith('berth-bench-') && path.join(tmp, d) !== mine)
    .map((d) => path.join(tmp, d))
    .filter((dir) => {
      try {
        return readJournal(path.join(dir, 'journal.jsonl')).some((e) => e.kind === 'pid' && startTimeOf(e.pid) === e.start);
      } catch {
        return false;
      }
    });
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { rounds: { type: 'string' }, 'work-hint': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const what = positionals[0] ?? 'all';
  if (values.help || (what !== 'all' && !(BENCHES as readonly string[]).includes(what))) {
    process.stdout.write(usage);
    return values.help ? 0 : 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (loop device, mounts, containers)\n');
    return 1;
  }
  const rounds = (dflt: number) => (values.rounds ? Math.max(1, Number(values.rounds)) : dflt);
  const env = await BenchEnv.create({ hintFile: values['work-hint'] });
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    interrupted.value = true;
    env.log(`${sig}: cleaning up`);
    void env.journal.release().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const resultsDir = path.join(projectRoot, 'bench/results');
  const others = otherRuns(env.work);
  if (others.length) env.log(`warning: another bench run is active (${others.join(', ')}); both runs' figures are distorted`);
  const context = { versions: await versions(), loadNote: 'other work may share this machine; figures are noisy', concurrentBenchRuns: others };
  const t0 = Date.now();
  let failed = false;
  const all: BenchResult[] = [];
  const emit = (r: BenchResult) => {
    if (stopping) return;
    all.push(r);
    printResult(r);
    const file = writeResult(resultsDir, r, context);
    process.stdout.write(`(results: ${path.relative(projectRoot, file)})\n`);
  };
  try {
    // The filesystem first, so its sweep and unmount are undone after every daemon.
    await env.fs();
    const want = (b: string) => what === 'all' || what === b;
    // One benchmark failing does not stop the others.
    const bench = async (name: string, f: () => Promise<BenchResult[]>) => {
      try {
        (await f()).forEach(emit);
      } catch (err) {
        if (stopping) throw err;
        failed = true;
        process.stderr.write(`bench ${name}: ${(err as Error).stack ?? err}\n`);
      }
    };
    if (want('pull')) await bench('pull', async () => [await pullBench(env, rounds(3))]);
    if (want('images')) await bench('images', async () => [await imagesBench(env, rounds(15))]);
    if (want('run')) await bench('run', async () => [await runBench(env, rounds(10))]);
    if (want('run50') || want('memory')) {
      await bench('run50', () => run50Bench(env, rounds(what === 'memory' ? 1 : 2), { timing: want('run50'), memory: want('memory'), afterBigPull: want('pull') }));
    }
    if (want('network')) await bench('network', async () => [await networkBench(env, rounds(5))]);
    if (want('cri')) await bench('cri', async () => [await criBench(env, rounds(5))]);
    if (want('docker')) await bench('docker', async () => [await dockerBench(env, rounds(10))]);
    if (want('startup')) await bench('startup', async () => [await startupBench(env, rounds(5))]);
    if (want('build')) await bench('build', async () => [await buildBench(env, rounds(3))]);
  } catch (err) {
    failed = true;
    if (!stopping) process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  } finally {
    if (!stopping) {
      env.log('cleaning up');
      await env.journal.release();
    }
  }
  if (all.length > 1) printSummary(all);
  env.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
