import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchEnv, Berth } from '../lib/env.ts';
import { berthSetup, commOf, failure, findProcesses, interleave, memOf, skipUnless, sumMem, type Case } from '../lib/measure.ts';
import { must, sleep } from '../lib/proc.ts';
import { freshMemory } from './startup.ts';
import { addSamples, type BenchResult, type Series } from '../lib/report.ts';

/** Pulls the tiny image into every store (untimed) and returns what the run benchmarks need. */
async function prepare(env: BenchEnv) {
  const ref = await env.image('tiny');
  const cd = await env.containerd();
  const { podman } = await env.podman();
  const berth = await env.berth();
  const b = typeof berth === 'string' ? undefined : berth;
  let berthSkip = skipUnless(typeof berth === 'string' ? berth : (await berth.has('pull')) && (await berth.has('run')) && (await berth.has('rm')), 'berth run/rm');
  await cd.ctr.must(['images', 'pull', '--plain-http', ref]);
  await podman.must(['pull', '-q', '--tls-verify=false', ref]);
  berthSkip = await berthSetup(berthSkip, () => b!.cli.must(['pull', ref]));
  return { ref, ctr: cd.ctr, runcRoot: cd.runcRoot, containerd: cd.daemon, podman, b, berthSkip };
}

/** `run --rm IMAGE true`: berth, ctr, podman, and raw runc on a prepared bundle as the floor. */
export async function runBench(env: BenchEnv, rounds: number): Promise<BenchResult> {
  const p = await prepare(env);
  const { runc, bundle } = await env.runcBundle();
  const cni = await env.ctrCni();
  let n = 0;
  const id = (what: string) => `${what}-${env.tag}-${n++}`;
  const berthSpec = p.berthSkip ? { skip: p.berthSkip } : await berthSpecBundle(env, p.b!, p.ref, bundle).catch((err: unknown) => ({ skip: failure(err) }));
  let floorId = '';
  const cases: Case[] = [
    { key: 'berth', label: 'berth run --rm', skip: p.berthSkip, note: 'default network (bridge)', measure: async () => (await p.b!.cli.must(['run', '--rm', p.ref, 'true'])).ms },
    { key: 'berth-none', label: 'berth run --rm --network none', skip: p.berthSkip, measure: async () => (await p.b!.cli.must(['run', '--rm', '--network', 'none', p.ref, 'true'])).ms },
    {
      key: 'berth-node',
      label: 'berth run --rm --network none, Node CLI (BERTH_CLI_LOCAL=1)',
      skip: p.berthSkip,
      measure: async () => (await p.b!.cli.must(['run', '--rm', '--network', 'none', p.ref, 'true'], { env: { BERTH_CLI_LOCAL: '1' } })).ms,
    },
    { key: 'ctr', label: 'ctr run --rm', note: 'own empty netns', measure: async () => (await p.ctr.must(['run', '--rm', '--runc-root', p.runcRoot, p.ref, id('c'), 'true'])).ms },
    {
      key: 'ctr-cni',
      label: 'ctr run --rm --cni',
      note: `bridge + portmap conflist of ours (${cni.net.bridge}, ${cni.net.subnet})`,
      measure: async () => (await cni.ctr.must(['run', '--rm', '--cni', '--runc-root', cni.runcRoot, p.ref, id('n'), 'true'])).ms,
    },
    { key: 'podman', label: 'podman run --rm --network none', measure: async () => (await p.podman.must(['run', '--rm', '--network', 'none', p.ref, 'true'])).ms },
    { key: 'runc', label: 'runc run (prepared bundle)', note: 'floor', measure: async () => (await runc.must(['run', '--bundle', bundle, id('r')])).ms },
    {
      key: 'runc-berth-spec',
      label: "runc run (berth's config.json for --network none)",
      note: "floor of berth's spec: seccomp, mounts, masked paths, cgroups as berth asks",
      skip: 'skip' in berthSpec ? berthSpec.skip : undefined,
      prepare: async () => {
        floorId = id('s');
        if ('write' in berthSpec) berthSpec.write(floorId);
      },
      measure: async () => (await runc.must(['run', '--bundle', 'write' in berthSpec ? berthSpec.dir : bundle, floorId])).ms,
    },
  ];
  return {
    bench: 'run',
    series: await interleave(cases, rounds, (s) => env.log(s)),
    ratios: [
      { num: 'berth-none', den: 'ctr', target: 0.75 },
      { num: 'berth', den: 'ctr-cni', target: 0.5 },
      { num: 'berth', den: 'ctr' },
      { num: 'berth-none', den: 'podman' },
      { num: 'berth-none', den: 'runc', target: 1.3 },
      { num: 'berth-none', den: 'runc-berth-spec' },
      { num: 'runc-berth-spec', den: 'runc' },
      { num: 'berth-node', den: 'ctr' },
      { num: 'ctr', den: 'runc' },
      { num: 'podman', den: 'runc' },
    ],
    notes: [
      'ctr run gives the container an empty network namespace, like --network none; the target is compared against berth with --network none',
      "ctr run --cni sets up containerd's CNI (go-cni, in ctr) with a conflist of the bench's own, bind-mounted on /etc/cni/net.d in a private mount namespace (ctr 1.6 reads no other dir), entered with nsenter; it is compared against berth's default bridge; ctr's CNI DEL passes no netns, so the bridge plugin releases the address but leaves the container's NAT rule (removed by the bench at the end)",
      'berth = the native client, whose command berthd runs; the Node CLI row is the same command in a Node process of its own',
      "runc run of berth's spec: the config.json berth wrote for a `run --network none` of the same image, pointed at the floor's rootfs, joining one netns made by the bench (berth makes the netns itself), /etc files copied; berth-none minus this row is berth's own cost",
    ],
  };
}

/**
 * A bundle whose config.json is the one berth generates for `run --rm
 * --network none IMAGE true`, so runc's work on berth's spec (seccomp,
 * mounts, masked paths, cgroups) is measured apart from berth's own. The
 * spec is taken from a real container's bundle; the rootfs is the floor's,
 * the /etc files berth bind-mounts are copied beside it, the network
 * namespace is one the bench made (berth makes its own in-process, outside
 * runc), and each run gets a cgroup of its own under a parent the journal
 * removes.
 */
async function berthSpecBundle(env: BenchEnv, b: Berth, ref: string, floorBundle: string) {
  const name = `spec-${env.tag}`;
  const fullId = (await b.cli.must(['run', '-d', '--network', 'none', '--name', name, ref, 'sleep', '600'])).stdout.trim();
  try {
    const configPath = findConfig(path.join(b.state, 'containers'), fullId);
    if (!configPath) throw new Error(`no config.json for container ${fullId} under ${b.state}/containers`);
    const spec = JSON.parse(readFileSync(configPath, 'utf8')) as BerthSpec;
    const dir = path.join(path.dirname(floorBundle), 'berth-spec');
    mkdirSync(path.join(dir, 'files'), { recursive: true });
    for (const m of spec.mounts) {
      if (m.type !== 'bind' || !m.source || !(m.source.startsWith(b.root) || m.source.startsWith(b.state))) continue;
      const copy = path.join(dir, 'files', path.basename(m.source));
      copyFileSync(m.source, copy);
      m.source = copy;
    }
    const netns = `berth-floor-${env.tag}`;
    await must('ip', ['netns', 'add', netns]);
    env.journal.add({ kind: 'cmd', argv: ['ip', 'netns', 'delete', netns] });
    for (const ns of spec.linux.namespaces) if (ns.type === 'network') ns.path = `/run/netns/${netns}`;
    spec.root.path = path.join(floorBundle, 'rootfs');
    spec.process.args = ['true'];
    spec.process.terminal = false;
    const cgroupParent = `/berth-floor-${env.tag}`;
    env.journal.add({ kind: 'cgroup', name: cgroupParent });
    return {
      dir,
      write: (id: string) => writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...spec, linux: { ...spec.linux, cgroupsPath: `${cgroupParent}/${id}` } })),
    };
  } finally {
    await b.cli.must(['rm', '-f', name]);
  }
}

/** The parts of an OCI config.json the floor rewrites. */
interface BerthSpec {
  root: { path: string };
  process: { args: string[]; terminal?: boolean };
  mounts: Array<{ type?: string; source?: string }>;
  linux: { namespaces: Array<{ type: string; path?: string }>; cgroupsPath?: string };
}

/** The bundle's config.json of container `id`: berth keeps bundles at <state>/containers/<namespace>/<id>. */
function findConfig(containers: string, id: string): string | undefined {
  for (const ns of existsSync(containers) ? readdirSync(containers) : []) {
    const f = path.join(containers, ns, id, 'config.json');
    if (existsSync(f)) return f;
  }
  return undefined;
}

interface Fleet {
  key: string;
  label: string;
  skip?: string;
  start(i: number): Promise<number>;
  remove(i: number): Promise<number>;
  /** The daemon whose growth counts toward each container's cost, if the engine has one. */
  daemonPid?: () => number;
}

/**
 * 50 containers started detached one after another, then removed one after
 * another; with `memory`, the memory each running container adds is taken
 * in every round while all 50 sleep (berth's idle rows after the big pull,
 * under `all`, in the first only), and the daemons' fresh rows once per
 * round before.
 */
export async function run50Bench(env: BenchEnv, rounds: number, opts: { count?: number; timing?: boolean; memory?: boolean; afterBigPull?: boolean } = {}): Promise<BenchResult[]> {
  const count = opts.count ?? 50;
  const p = await prepare(env);
  // A sleep duration unique to this run tags our container processes, so the
  // monitors are found as their parents whatever the engine calls them.
  const secs = String(86_400 + Math.floor(Math.random() * 10_000));
  const name = (e: string, i: number) => `${e}-${env.tag}-${i}`;
  const fleets: Fleet[] = [
    {
      key: 'berth',
      label: 'berth run -d / rm -f',
      skip: p.berthSkip,
      start: async (i) => (await p.b!.cli.must(['run', '-d', '--network', 'none', '--name', name('b', i), p.ref, 'sleep', secs])).ms,
      remove: async (i) => (await p.b!.cli.must(['rm', '-f', name('b', i)])).ms,
      daemonPid: () => (p.b as Berth).daemon.pid,
    },
    {
      key: 'ctr',
      label: 'ctr run -d / task rm -f + rm',
      start: async (i) => (await p.ctr.must(['run', '-d', '--runc-root', p.runcRoot, p.ref, name('c', i), 'sleep', secs])).ms,
      remove: async (i) => (await p.ctr.must(['tasks', 'rm', '-f', name('c', i)])).ms + (await p.ctr.must(['containers', 'rm', name('c', i)])).ms,
      daemonPid: () => p.containerd.pid,
    },
    {
      key: 'podman',
      label: 'podman run -d / rm -f -t 0',
      start: async (i) => (await p.podman.must(['run', '-d', '--network', 'none', '--name', name('p', i), p.ref, 'sleep', secs])).ms,
      remove: async (i) => (await p.podman.must(['rm', '-f', '-t', '0', name('p', i)])).ms,
    },
  ];
  const timing: Series[] = fleets.flatMap((f) => [
    { key: `${f.key}-start`, label: `${f.label}: start ${count}`, unit: 'ms', samples: [], skip: f.skip },
    { key: `${f.key}-rm`, label: `${f.label}: remove ${count}`, unit: 'ms', samples: [], skip: f.skip },
    { key: `${f.key}-total`, label: `${f.label}: total`, unit: 'ms', samples: [], skip: f.skip },
  ]);
  const memory: Series[] = [];
  const memNotes: string[] = [];
  if (opts.memory) {
    const fresh = await freshMemory(env, opts.afterBigPull ?? false, rounds);
    memory.push(...fresh.series);
    memNotes.push(...fresh.notes);
  }
  const get = (k: string) => timing.find((s) => s.key === k)!;
  for (let r = 0; r < rounds; r++) {
    for (const f of fleets) {
      if (get(`${f.key}-start`).skip) {
        if (opts.memory && r === 0) memory.push({ key: `${f.key}-per-container-pss`, label: `${f.key}: added per container`, unit: 'MiB', samples: [], skip: f.skip });
        continue;
      }
      let started = 0;
      let t = { start: 0, rm: 0 };
      try {
        const idle = f.daemonPid ? memOf(f.daemonPid()) : undefined;
        for (let i = 0; i < count; i++, started++) t.start += await f.start(i);
        env.log(`round ${r + 1}/${rounds} ${f.label}: started ${count} in ${t.start.toFixed(0)} ms`);
        if (opts.memory) {
          await sleep(1500);
          // After the big pull, only the first round's idle is that: later ones follow this bench's own containers.
          addSamples(memory, memorySeries(f, count, secs, idle, r === 0 ? memNotes : [], r === 0 || !opts.afterBigPull));
        }
        for (let i = 0; i < count; i++, started--) t.rm += await f.remove(i);
        env.log(`round ${r + 1}/${rounds} ${f.label}: removed ${count} in ${t.rm.toFixed(0)} ms`);
        get(`${f.key}-start`).samples.push(t.start);
        get(`${f.key}-rm`).samples.push(t.rm);
        get(`${f.key}-total`).samples.push(t.start + t.rm);
      } catch (err) {
        const msg = failure(err);
        for (const s of ['start', 'rm', 'total']) get(`${f.key}-${s}`).skip = msg;
        env.log(`${f.label}: ${msg}`);
        for (let i = count - started; i < count; i++) await f.remove(i).catch(() => 0);
      }
      t = { start: 0, rm: 0 };
    }
  }
  const results: BenchResult[] = [];
  if (opts.timing !== false) {
    results.push({
      bench: 'run50',
      series: timing,
      ratios: [
        { num: 'berth-total', den: 'ctr-total', target: 1 },
        { num: 'berth-total', den: 'podman-total', target: 1 },
        { num: 'berth-start', den: 'ctr-start' },
        { num: 'berth-start', den: 'podman-start' },
      ],
      notes: [`${count} containers of \`sleep\`, started one after another, then removed one after another; every engine with no network (ctr's default, --network none for berth and podman)`],
    });
  }
  if (opts.memory) {
    results.push({
      bench: 'memory',
      series: memory,
      ratios: [
        { num: 'berth-per-container-pss', den: 'podman-per-container-pss', target: 1 },
        { num: 'berth-per-container-pss', den: 'ctr-per-container-pss' },
        { num: 'berth-monitor-rss', den: 'podman-monitor-rss' },
        { num: 'berthd-fresh-rss', den: 'limit-fresh', target: 1 },
        ...(opts.afterBigPull ? [{ num: 'berth-daemon-idle-rss', den: 'limit-idle', target: 1 }] : []),
        { num: 'berthd-fresh-rss', den: 'containerd-fresh-rss' },
        { num: 'berthd-fresh-pss', den: 'containerd-fresh-pss' },
      ],
      notes: [
        `with ${count} sleeping containers per engine; monitor = parent process of each container's init (found by the run's unique sleep argument), summed over its PIDs and divided by ${count}`,
        'per-container = monitors\' PSS + the daemon\'s PSS growth over idle, divided by the count; PSS splits shared pages (one Go binary shared by 50 shims) fairly, RSS counts them in each process',
        ...memNotes,
      ],
    });
  }
  return results;
}

function memorySeries(f: Fleet, count: number, secs: string, idle: ReturnType<typeof memOf> | undefined, notes: string[], idleRows: boolean): Series[] {
  const procs = findProcesses(['sleep', secs]);
  const monitors = [...new Set(procs.map((x) => x.ppid))];
  const mon = sumMem(monitors);
  const comms = [...new Set(monitors.map(commOf))].join(', ');
  notes.push(`${f.key}: ${procs.length} container processes, ${monitors.length} monitor processes (${comms})`);
  const MiB = (kib: number) => kib / 1024;
  const out: Series[] = [
    { key: `${f.key}-monitor-rss`, label: `${f.key}: monitor RSS per container`, unit: 'MiB', samples: [MiB(mon.rssKiB / count)] },
    { key: `${f.key}-monitor-pss`, label: `${f.key}: monitor PSS per container`, unit: 'MiB', samples: [MiB(mon.pssKiB / count)] },
  ];
  let daemonGrowth = 0;
  if (f.daemonPid && idle) {
    const now = memOf(f.daemonPid());
    daemonGrowth = now.pssKiB - idle.pssKiB;
    out.unshift(
      ...(idleRows
        ? [
            { key: `${f.key}-daemon-idle-rss`, label: `${f.key}: daemon RSS idle`, unit: 'MiB', samples: [MiB(idle.rssKiB)] },
            { key: `${f.key}-daemon-idle-pss`, label: `${f.key}: daemon PSS idle`, unit: 'MiB', samples: [MiB(idle.pssKiB)] },
          ]
        : []),
      { key: `${f.key}-daemon-busy-rss`, label: `${f.key}: daemon RSS with ${count}`, unit: 'MiB', samples: [MiB(now.rssKiB)] },
    );
  }
  out.push({ key: `${f.key}-per-container-pss`, label: `${f.key}: added per container (PSS, monitor + daemon growth)`, unit: 'MiB', samples: [MiB((mon.pssKiB + daemonGrowth) / count)] });
  return out;
}

