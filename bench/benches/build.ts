import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchEnv, Berth, Tool } from '../lib/env.ts';
import { berthSetup, interleave, skipUnless, type Case } from '../lib/measure.ts';
import { run } from '../lib/proc.ts';
import type { BenchResult, Series } from '../lib/report.ts';

const SOURCE_FILES = 2000;
const TAG = 'bench/built:1';

/** Where source file `i` of the context is. */
const sourcePath = (i: number) => `src/pkg${String(i % 20).padStart(2, '0')}/mod${Math.floor(i / 20) % 5}/file_${String(i).padStart(4, '0')}.txt`;

/** The file the rebuild changes, one of the 2,000. */
const CHANGED = sourcePath(737);

/** mulberry32, so every run builds the same context. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The build context: a Dockerfile and a source tree of 2,000 small text
 * files (0.2-8 KiB, 20 packages of 5 modules). The first RUN stands for a
 * dependency install (before the COPY, so a rebuild takes it from the
 * cache); the two after it read the sources and pack them; the second
 * stage copies the result out.
 */
function writeContext(dir: string, base: string): void {
  const rnd = prng(7);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'return', 'const', 'import', 'export', 'function', 'value', 'index', 'buffer', 'stream', 'await'];
  for (let i = 0; i < SOURCE_FILES; i++) {
    const rel = sourcePath(i);
    const size = 200 + Math.floor(rnd() * 8000);
    let s = '';
    while (s.length < size) s += `${words[Math.floor(rnd() * words.length)]} ${Math.floor(rnd() * 1e6)}${rnd() < 0.1 ? '\n' : ' '}`;
    mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), s.slice(0, size));
  }
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      `FROM ${base} AS build`,
      'RUN mkdir -p /deps && i=0 && while [ $i -lt 200 ]; do echo "dependency $i" > /deps/lib$i.txt; i=$((i+1)); done',
      'COPY src /src',
      'RUN find /src -type f | wc -l > /count && cat /src/*/*/* | wc -c > /bytes',
      'RUN mkdir /out && tar -cf - -C /src . | gzip > /out/app.tar.gz && cp /count /bytes /out/ && cp -r /deps /out/deps',
      `FROM ${base}`,
      'COPY --from=build /out /out',
      '',
    ].join('\n'),
  );
}

/** How many steps a build's output says it took from its cache. */
function cachedSteps(output: string): number {
  // berth's plain progress: `#N CACHED`; podman/buildah: `--> Using cache <id>`.
  return (output.match(/^#\d+ CACHED$|^--> Using cache /gm) ?? []).length;
}

/** The image IDs a store lists (`images -a -q`), each once. */
async function imageIds(tool: Pick<Tool, 'must'>): Promise<Set<string>> {
  return new Set((await tool.must(['images', '-a', '-q'])).stdout.trim().split('\n').filter(Boolean));
}

/** What a cold wipe left beyond the images the store held before the first build (the base, and under `all` the other benches' images). */
function extraImages(left: Set<string>, before: Set<string>): string[] {
  return [...left].filter((id) => !before.has(id));
}

async function berthCold(b: Berth, before: Set<string>): Promise<void> {
  await b.cli.run(['rmi', '-f', TAG]);
  // A rebuild left the image it replaced untagged, as docker does.
  await b.cli.must(['image', 'prune', '-f']);
  await b.cli.must(['builder', 'prune', '-a', '-f']);
  const extra = extraImages(await imageIds(b.cli), before);
  if (extra.length) throw new Error(`berth kept ${extra.length} image(s) of the build after rmi and builder prune: ${extra.join(' ')}`);
}

async function podmanCold(podman: Tool, before: Set<string>): Promise<void> {
  await podman.run(['rmi', '-f', TAG]);
  // Intermediate images (--layers) are dangling once the tag is gone; prune takes them and the build cache with them.
  await podman.must(['image', 'prune', '-f']);
  await podman.must(['builder', 'prune', '-f']);
  const extra = extraImages(await imageIds(podman), before);
  if (extra.length) throw new Error(`podman kept ${extra.length} image(s) of the build after rmi and prune: ${extra.join(' ')}`);
}

/**
 * The same Dockerfile and context built by `berth build` and by `podman
 * build` (buildah, with its layer cache): cold (no build cache, no
 * intermediate images, the base image present), then rebuilt with one of
 * the 2,000 source files changed.
 */
export async function buildBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const base = await env.image('tiny');
  const mnt = await env.fs();
  const ctxDir = path.join(mnt, 'build-context');
  writeContext(ctxDir, base);
  const { podman } = await env.podman();
  // buildah keeps its temporary files under TMPDIR: on the bench filesystem, as berth's build directory is.
  const podmanTmp = path.join(mnt, 'podman', 'buildtmp');
  mkdirSync(podmanTmp, { recursive: true });
  const podmanEnv = { TMPDIR: podmanTmp };
  await podman.must(['pull', '-q', '--tls-verify=false', base]);
  const berth = await env.berth();
  const b = typeof berth === 'string' ? undefined : berth;
  let berthSkip = skipUnless(typeof berth === 'string' ? berth : (await berth.has('build')) && (await berth.has('builder prune')), 'berth build');
  berthSkip = await berthSetup(berthSkip, () => b!.cli.must(['pull', base]));
  // Before any build: a cold wipe must leave exactly these (a left-over tag of an earlier run is not kept).
  await podman.run(['rmi', '-f', TAG]);
  if (b && !berthSkip) await b.cli.run(['rmi', '-f', TAG]);
  const podmanBefore = await imageIds(podman);
  const berthBefore = b && !berthSkip ? await imageIds(b.cli) : new Set<string>();
  const sync = async () => void (await run('sync', []));
  let edits = 0;
  // Each rebuild changes the file against what that engine built last.
  const change = async () => {
    writeFileSync(path.join(ctxDir, CHANGED), `changed ${edits++}\n`);
    await sync();
  };
  const berthBuild = ['build', '--progress', 'plain', '--network', 'none', '-t', TAG, ctxDir];
  const podmanBuild = ['build', '--layers', '--network', 'none', '-t', TAG, ctxDir];
  const cached: Record<string, number[]> = { 'berth-rebuild': [], 'podman-rebuild': [] };
  const build = async (key: string, f: () => Promise<{ ms: number; stdout: string; stderr: string }>) => {
    const r = await f();
    if (key in cached) {
      const n = cachedSteps(r.stdout + r.stderr);
      // The first RUN (before the COPY) must come from the cache, or the rebuild is a cold build in disguise.
      if (n < 1) throw new Error(`${key}: no step came from the cache:\n${(r.stdout + r.stderr).slice(-2000)}`);
      cached[key].push(n);
    }
    return r.ms;
  };
  const cases: Case[] = [
    {
      key: 'berth-cold',
      label: 'berth build (cold)',
      skip: berthSkip,
      prepare: async () => {
        await berthCold(b!, berthBefore);
        await sync();
      },
      measure: () => build('berth-cold', () => b!.cli.must(berthBuild)),
    },
    {
      key: 'podman-cold',
      label: 'podman build (cold)',
      prepare: async () => {
        await podmanCold(podman, podmanBefore);
        await sync();
      },
      measure: () => build('podman-cold', () => podman.must(podmanBuild, { env: podmanEnv })),
    },
    { key: 'berth-rebuild', label: 'berth build (one file changed)', skip: berthSkip, prepare: change, measure: () => build('berth-rebuild', () => b!.cli.must(berthBuild)) },
    { key: 'podman-rebuild', label: 'podman build (one file changed)', prepare: change, measure: () => build('podman-rebuild', () => podman.must(podmanBuild, { env: podmanEnv })) },
  ];
  const series: Series[] = await interleave(cases, rounds, (s) => env.log(s));
  for (const [key, n] of Object.entries(cached)) {
    if (n.length) series.push({ key: `${key}-cached`, label: `${key}: steps from the cache`, unit: 'steps', samples: n });
  }
  if (b) await b.cli.run(['rmi', '-f', TAG]);
  await podman.run(['rmi', '-f', TAG]);
  return {
    bench: 'build',
    series,
    ratios: [
      { num: 'berth-cold', den: 'podman-cold', target: 0.7 },
      { num: 'berth-rebuild', den: 'podman-rebuild', target: 0.5 },
    ],
    notes: [
      `Dockerfile: FROM ${base} (busybox, pre-pulled, untimed); RUN (200 small files, before the COPY); COPY of ${SOURCE_FILES} files (0.2-8 KiB, ~8 MB); two RUNs reading and packing them; a second stage COPY --from the first. RUNs with --network none on both`,
      'cold = berth: rmi of the built image, image prune (the image a rebuild replaced) and builder prune -a (cache entries, their leases, GC); podman: rmi, image prune and builder prune; both checked to hold only the images they held before the first build (the base, and under `all` those of the other benches)',
      `rebuild = ${CHANGED} changed before each sample: the first RUN comes from the cache (checked in each output), the COPY and everything after it run again on both`,
      'berth: berthd (hosting the CLI) reads the context directory in place (BERTH_CLI_LOCAL=1: the Node CLI sends it as a tar), hashes the sources for the cache key (the hashes of unchanged files kept), copies them into a created container, commits each step as a compressed layer into the content store and its snapshot; podman build --layers (its default): buildah reads the context in place, commits each step as an image in containers-storage (an uncompressed overlay diff, compressed only when pushed)',
    ],
  };
}
