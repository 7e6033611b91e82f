import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, readlink, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Engine } from './engine.ts';

/**
 * What a daemon holds on the machine, counted so that two probes taken
 * before and after many run/rm cycles can be compared: anything a removed
 * container leaves behind shows up as growth in one of these counts. Shared
 * by test/integration/leaks.test.ts and bench/soak.ts.
 */
export interface Probe {
  /** Counts that must not grow (keys are stable, print order). */
  counts: Record<string, number>;
  /** The paths behind the directory counts (`root/<dir>`, `state/<dir>`), so growth names what is new. */
  entries: Record<string, string[]>;
  /** berthd's open file descriptors (allowed a small tolerance). */
  fds: number;
  /** berthd's resident set in KiB (printed, never asserted). */
  rssKiB: number;
}

/** A cgroup parent unique to one test daemon, so other daemons' containers never count. */
export function uniqueCgroupParent(): string {
  return `/berth-leak-${randomBytes(4).toString('hex')}`;
}

export function cgroupConfig(parent: string): string {
  return `[runtime]\ncgroup_parent = "${parent}"\n`;
}

const cgroupRoot = '/sys/fs/cgroup';

async function cgroupDirs(base: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!e.isDirectory()) continue;
      out.push(path.join(dir, e.name));
      await walk(path.join(dir, e.name));
    }
  };
  await walk(base);
  return out;
}

/** Every cgroup directory below `parent` in every hierarchy (v1 controllers and the unified one). */
export async function cgroupsUnder(parent: string): Promise<string[]> {
  const out: string[] = [];
  for (const ctrl of await readdir(cgroupRoot).catch(() => [] as string[])) {
    out.push(...(await cgroupDirs(path.join(cgroupRoot, ctrl, parent))));
  }
  return out;
}

/** Remove the (empty) cgroup parent a test daemon used, in every hierarchy. */
export async function removeCgroupParent(parent: string): Promise<void> {
  for (const ctrl of await readdir(cgroupRoot).catch(() => [] as string[])) {
    const dirs = await cgroupDirs(path.join(cgroupRoot, ctrl, parent));
    for (const d of dirs.sort((a, b) => b.length - a.length)) await rmdir(d).catch(() => {});
    await rmdir(path.join(cgroupRoot, ctrl, parent)).catch(() => {});
  }
}

/** Entries (files and dirs) below `dir`, recursively, as paths relative to `base`; none when it does not exist. */
async function listEntries(dir: string, base: string, out: string[] = []): Promise<string[]> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    out.push(path.relative(base, p));
    if (e.isDirectory()) await listEntries(p, base, out);
  }
  return out;
}

function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { maxBuffer: 64 << 20 }, (_err, stdout) => resolve(String(stdout ?? ''))));
}

async function monitorsOf(state: string): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const argv = cmd.split('\0');
    if (path.basename(argv[0] ?? '').startsWith('berth-monitor') && argv.some((a) => a.startsWith(state + '/'))) n++;
  }
  return n;
}

/** The names and subnets this daemon's networks appear under in iptables. */
async function networkMarks(e: Engine): Promise<string[]> {
  const marks = [e.bridge];
  const ls = await e.d.cli(['network', 'ls', '-q', '--no-trunc']);
  for (const id of ls.stdout.split('\n').filter(Boolean)) {
    marks.push(`berth-${id.slice(0, 12)}`);
    const ins = await e.d.cli(['network', 'inspect', id]);
    for (const m of ins.stdout.matchAll(/"Subnet":\s*"([^"]+)"/g)) marks.push(m[1]);
  }
  return marks;
}

export async function probe(e: Engine, cgroupParent: string): Promise<Probe> {
  const { d } = e;
  const pid = d.proc.pid!;
  const counts: Record<string, number> = {};
  const entries: Record<string, string[]> = {};
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  counts.mounts = mountinfo.split('\n').filter((l) => {
    const m = l.split(' ')[4];
    return m && (m === d.dir || m.startsWith(d.dir + '/'));
  }).length;
  counts.cgroups = (await cgroupsUnder(cgroupParent)).length;
  counts.netns = (await readdir(path.join(d.state, 'netns')).catch(() => [])).length;
  counts.veths = (await sh('ip', ['-o', 'link', 'show', 'master', e.bridge])).split('\n').filter(Boolean).length;
  const marks = await networkMarks(e);
  let ipt = 0;
  for (const table of ['filter', 'nat']) {
    const save = await sh('iptables-save', ['-t', table]);
    ipt += save.split('\n').filter((l) => marks.some((m) => l.includes(m))).length;
  }
  counts.iptables = ipt;
  for (const base of [d.root, d.state]) {
    for (const top of await readdir(base, { withFileTypes: true }).catch(() => [])) {
      if (!top.isDirectory()) continue;
      const key = `${base === d.root ? 'root' : 'state'}/${top.name}`;
      entries[key] = await listEntries(path.join(base, top.name), base);
      counts[key] = entries[key].length;
    }
  }
  counts.monitors = await monitorsOf(d.state);
  const fds = (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { counts, entries, fds, rssKiB };
}

/**
 * The counts that grew from `before` to `after` ("name a -> b"), ignoring
 * fds and RSS; a directory's count is followed by the paths that are new
 * in it ("root/network 7 -> 8 new: network/ipam/x/10.1.2.3").
 */
export function growth(before: Probe, after: Probe): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(after.counts)) {
    const was = before.counts[k] ?? 0;
    if (v <= was) continue;
    const had = new Set(before.entries[k] ?? []);
    const fresh = (after.entries[k] ?? []).filter((p) => !had.has(p));
    const named = fresh.length ? ` new: ${fresh.slice(0, 20).join(' ')}${fresh.length > 20 ? ` (+${fresh.length - 20} more)` : ''}` : '';
    out.push(`${k} ${was} -> ${v}${named}`);
  }
  return out;
}

export function formatProbe(p: Probe): string {
  const c = Object.entries(p.counts).map(([k, v]) => `${k}=${v}`).join(' ');
  return `fds=${p.fds} rss=${(p.rssKiB / 1024).toFixed(1)}MiB ${c}`;
}

/** Describe what a berthd fd points at, to name a leaking fd. */
export async function fdTargets(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    out.push(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?'));
  }
  return out.sort();
}

/** The kinds of cycle, each one container's whole life; each throws on an unexpected result. */
export const cycleKinds = ['bridge', 'none', 'detached', 'create', 'failed', 'published'] as const;
export type CycleKind = (typeof cycleKinds)[number];

export async function cycle(e: Engine, kind: CycleKind): Promise<void> {
  const cli = async (args: string[], want = 0) => {
    const r = await e.d.cli(args);
    if (r.code !== want) throw new Error(`berth ${args.join(' ')}: exit ${r.code} (want ${want}): ${r.stderr}`);
    return r.stdout;
  };
  switch (kind) {
    case 'bridge':
      await cli(['run', '--rm', e.image, 'true']);
      return;
    case 'none':
      await cli(['run', '--rm', '--network', 'none', e.image, 'true']);
      return;
    case 'detached': {
      const id = (await cli(['run', '-d', e.image, 'sleep', '600'])).trim();
      const out = await cli(['exec', id, 'echo', 'hi']);
      if (out !== 'hi\n') throw new Error(`exec printed ${JSON.stringify(out)}`);
      await cli(['stop', '-t', '1', id]);
      await cli(['rm', id]);
      return;
    }
    case 'create': {
      const id = (await cli(['create', e.image, 'true'])).trim();
      await cli(['rm', id]);
      return;
    }
    case 'failed':
      await cli(['run', '--rm', e.image, 'no-such-executable'], 127);
      return;
    case 'published': {
      const id = (await cli(['run', '-d', '-p', '127.0.0.1::80', e.image, 'sleep', '600'])).trim();
      await cli(['rm', '-f', id]);
      return;
    }
  }
}
