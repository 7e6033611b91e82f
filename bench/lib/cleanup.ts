import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { run as runCmd, sleep, type RunOptions } from './proc.ts';

const run = (cmd: string, args: string[], opts: RunOptions = {}) => runCmd(cmd, args, { ...opts, duringCleanup: true });

/**
 * Everything the bench starts or creates is written to a journal before (or
 * right after) it exists, so that one routine can undo it: in-process at the
 * end of a run or on a signal, and from bench/cleanup.ts when the harness
 * itself died. Every undo is idempotent and checks that the thing is still
 * ours (a PID's start time, a loop device's backing file) before acting.
 */
export type Entry =
  | { kind: 'dir'; path: string }
  | { kind: 'mount'; path: string }
  | { kind: 'loop'; file: string }
  | { kind: 'pid'; pid: number; start: string; what: string }
  | { kind: 'sweep'; path: string }
  | { kind: 'ctr'; address: string; namespace: string }
  | { kind: 'podman'; args: string[]; env: Record<string, string> }
  | { kind: 'berth'; bin: string; host: string }
  | { kind: 'runc'; root: string }
  | { kind: 'link'; name: string }
  | { kind: 'netavark-chains' }
  | { kind: 'cmd'; argv: string[] }
  | { kind: 'rmdir-empty'; paths: string[] }
  | { kind: 'cri'; socket: string }
  | { kind: 'cgroup'; name: string }
  | { kind: 'cni-masq'; network: string }
  | { kind: 'portmap-chains' }
  | { kind: 'subnet-rules'; subnet: string };

export class Journal {
  readonly file: string;
  readonly entries: Entry[] = [];
  #released = false;

  constructor(file: string) {
    this.file = file;
  }

  add(e: Entry): void {
    this.entries.push(e);
    appendFileSync(this.file, JSON.stringify(e) + '\n');
  }

  /** Undo everything, newest first. Safe to call twice. */
  async release(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await releaseAll([...this.entries], log);
  }
}

export function readJournal(file: string): Entry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Entry);
}

export async function releaseAll(entries: Entry[], log: (s: string) => void): Promise<void> {
  for (const e of entries.reverse()) {
    try {
      await release(e, log);
    } catch (err) {
      log(`cleanup: ${e.kind}: ${(err as Error).message}`);
    }
  }
}

async function release(e: Entry, log: (s: string) => void): Promise<void> {
  const quiet = { timeoutMs: 60_000 };
  switch (e.kind) {
    case 'berth': {
      const ps = await run(e.bin, ['-H', e.host, 'ps', '-aq'], { timeoutMs: 20_000 });
      const ids = ps.code === 0 ? ps.stdout.split(/\s+/).filter(Boolean) : [];
      if (ids.length) await run(e.bin, ['-H', e.host, 'rm', '-f', ...ids], quiet);
      return;
    }
    case 'ctr': {
      const ctr = (...a: string[]) => run('ctr', ['-a', e.address, '-n', e.namespace, ...a], { timeoutMs: 30_000 });
      const tasks = await ctr('tasks', 'ls', '-q');
      for (const id of tasks.code === 0 ? tasks.stdout.split(/\s+/).filter(Boolean) : []) await ctr('tasks', 'rm', '-f', id);
      const cs = await ctr('containers', 'ls', '-q');
      const ids = cs.code === 0 ? cs.stdout.split(/\s+/).filter(Boolean) : [];
      if (ids.length) await ctr('containers', 'rm', ...ids);
      return;
    }
    case 'podman': {
      const env = e.env;
      await run('podman', [...e.args, 'rm', '-a', '-f', '-t', '0'], { env, ...quiet });
      await run('podman', [...e.args, 'network', 'prune', '-f'], { env, ...quiet });
      return;
    }
    case 'runc': {
      const ls = await run('runc', ['--root', e.root, 'list', '-q'], { timeoutMs: 20_000 });
      for (const id of ls.code === 0 ? ls.stdout.split(/\s+/).filter(Boolean) : []) {
        await run('runc', ['--root', e.root, 'delete', '-f', id], { timeoutMs: 20_000 });
      }
      return;
    }
    case 'pid':
      return stopPid(e.pid, e.start, e.what, log);
    case 'sweep':
      return sweep(e.path, log);
    case 'mount':
      return unmountUnder(e.path, log);
    case 'loop': {
      // Every loop device backed by our file, found by `losetup -j`.
      const r = await run('losetup', ['-j', e.file]);
      for (const dev of r.stdout.split('\n').map((l) => l.split(':')[0]).filter(Boolean)) {
        const d = await run('losetup', ['-d', dev]);
        if (d.code !== 0) log(`cleanup: losetup -d ${dev}: ${d.stderr.trim()}`);
      }
      return;
    }
    case 'dir':
      rmSync(e.path, { recursive: true, force: true });
      return;
    case 'link': {
      const r = await run('ip', ['link', 'show', e.name]);
      if (r.code === 0) await run('ip', ['link', 'del', e.name]);
      return;
    }
    case 'netavark-chains':
      return removeNetavarkChains();
    case 'rmdir-empty':
      // Directories a peer creates outside our roots (containerd's shim
      // sockets and FIFOs under /run/containerd), removed only when empty.
      for (const p of e.paths) await run('rmdir', [p]);
      return;
    case 'cmd':
      await run(e.argv[0], e.argv.slice(1), quiet);
      return;
    case 'cri':
      return removePods(e.socket, log);
    case 'cgroup':
      return removeCgroup(e.name, log);
    case 'cni-masq':
      return removeMasq(e.network, log);
    case 'portmap-chains':
      return removePortmapChains();
    case 'subnet-rules':
      return removeSubnetRules(e.subnet, log);
  }
}

/** The start time field of /proc/PID/stat, which tells a reused PID from ours. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

async function stopPid(pid: number, start: string, what: string, log: (s: string) => void): Promise<void> {
  if (startTimeOf(pid) !== start) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 200; i++) {
    if (startTimeOf(pid) !== start || isZombie(pid)) return;
    await sleep(50);
  }
  log(`cleanup: ${what} (pid ${pid}) ignored SIGTERM for 10 s; sending SIGKILL`);
  process.kill(pid, 'SIGKILL');
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Kills, by PID, every process whose command line names our work dir (a
 * containerd shim with our socket, a conmon with our run root, a monitor
 * with our state dir) together with all its descendants (the containers),
 * leaves first. Only leftovers are found here: daemons we started were
 * stopped by their own journal entries before.
 */
async function sweep(path: string, log: (s: string) => void): Promise<void> {
  const mine = new Set<number>();
  for (let p: number | undefined = process.pid; p && p > 1; p = ppidOf(p)) mine.add(p);
  const children = new Map<number, number[]>();
  const roots: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const ppid = ppidOf(pid);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (!mine.has(pid) && cmdline.includes(path)) roots.push(pid);
  }
  const order: number[] = [];
  const visit = (pid: number) => {
    for (const c of children.get(pid) ?? []) visit(c);
    if (!mine.has(pid) && !order.includes(pid)) order.push(pid);
  };
  roots.forEach(visit);
  const describe = (pid: number) => {
    try {
      return `${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 120)})`;
    } catch {
      return String(pid);
    }
  };
  if (order.length) log(`cleanup: killing ${order.length} leftover process(es) under ${path}: ${order.map(describe).join(', ')}`);
  for (const pid of order) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (order.length) await sleep(300);
}

export function mountsUnder(path: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (mp === path || mp.startsWith(path + '/')) out.push(mp);
  }
  return out;
}

async function unmountUnder(path: string, log: (s: string) => void): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const mps = mountsUnder(path).sort((a, b) => b.length - a.length);
    if (!mps.length) return;
    for (const mp of mps) {
      const r = await run('umount', [mp]);
      if (r.code !== 0 && round >= 2) {
        log(`cleanup: umount ${mp}: ${r.stderr.trim()}; detaching lazily`);
        await run('umount', ['-l', mp]);
      }
    }
    await sleep(200);
  }
}

/**
 * netavark leaves its base chains behind after its last network goes away.
 * They are removed only when no network chain of any podman remains, and
 * the entry is journaled only when the chains did not exist before the
 * bench started.
 */
async function removeNetavarkChains(): Promise<void> {
  const save = await run('iptables-save', []);
  if (save.code !== 0 || /:NETAVARK-(DN-)?[0-9A-F]{8,}/.test(save.stdout)) return;
  const ipt = (...a: string[]) => run('iptables', ['-w', ...a]);
  await ipt('-D', 'FORWARD', '-m', 'comment', '--comment', 'netavark firewall plugin rules', '-j', 'NETAVARK_FORWARD');
  await ipt('-F', 'NETAVARK_FORWARD');
  await ipt('-X', 'NETAVARK_FORWARD');
  await ipt('-t', 'nat', '-D', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'NETAVARK-HOSTPORT-DNAT');
  await ipt('-t', 'nat', '-D', 'OUTPUT', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'NETAVARK-HOSTPORT-DNAT');
  await ipt('-t', 'nat', '-D', 'POSTROUTING', '-j', 'NETAVARK-HOSTPORT-MASQ');
  for (const c of ['NETAVARK-HOSTPORT-DNAT', 'NETAVARK-HOSTPORT-MASQ', 'NETAVARK-HOSTPORT-SETMARK']) {
    await ipt('-t', 'nat', '-F', c);
    await ipt('-t', 'nat', '-X', c);
  }
}

/** Whether netavark's base chains exist now (then they are not ours to remove). */
export async function netavarkChainsPresent(): Promise<boolean> {
  const save = await run('iptables-save', []);
  return save.stdout.includes('NETAVARK');
}

/** Stops and removes every pod sandbox (and so its containers) a CRI runtime still has. */
async function removePods(socket: string, log: (s: string) => void): Promise<void> {
  if (!existsSync(socket)) return;
  // Loaded here: gRPC is needed only when a CRI bench ran.
  const { criClient } = await import('./cri-client.ts');
  const cri = criClient(socket, 30_000);
  try {
    const pods = ((await cri.runtime('ListPodSandbox', {})).items ?? []) as { id: string }[];
    if (pods.length) log(`cleanup: removing ${pods.length} pod(s) from ${socket}`);
    for (const p of pods) {
      await cri.runtime('StopPodSandbox', { pod_sandbox_id: p.id }).catch(() => {});
      await cri.runtime('RemovePodSandbox', { pod_sandbox_id: p.id }).catch((err: Error) => log(`cleanup: RemovePodSandbox ${p.id}: ${err.message}`));
    }
  } finally {
    cri.close();
  }
}

/** Removes a cgroup and everything under it in every hierarchy (v1 controllers or v2), children first; only empty cgroups can go. */
async function removeCgroup(name: string, log: (s: string) => void): Promise<void> {
  const dirs: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    dirs.push(dir);
    for (const d of entries) if (d.isDirectory()) walk(`${dir}/${d.name}`);
  };
  const top = '/sys/fs/cgroup';
  for (const c of readdirSync(top, { withFileTypes: true })) if (c.isDirectory()) walk(`${top}/${c.name}${name}`);
  walk(`${top}${name}`);
  for (const dir of dirs.sort((a, b) => b.length - a.length)) {
    const r = await run('rmdir', [dir]);
    if (r.code !== 0 && existsSync(dir)) log(`cleanup: rmdir ${dir}: ${r.stderr.trim()}`);
  }
}

/**
 * The bridge plugin's NAT rules for a network of ours, left when a pod's
 * CNI DEL never ran (a killed run): each POSTROUTING rule carries the
 * network's name in its comment and jumps to a chain of its own.
 */
async function removeMasq(network: string, log: (s: string) => void): Promise<void> {
  const save = await run('iptables-save', ['-t', 'nat']);
  if (save.code !== 0) return;
  const rules = save.stdout.split('\n').filter((l) => l.startsWith('-A POSTROUTING ') && l.includes(`name: \\"${network}\\"`));
  if (!rules.length) return;
  const chains = rules.map((l) => / -j (\S+)/.exec(l)?.[1]).filter((c): c is string => !!c && c.startsWith('CNI-'));
  const input = ['*nat', ...rules.map((l) => `-D ${l.slice(3)}`), ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
  const r = await run('iptables-restore', ['-w', '--noflush'], { input });
  log(`cleanup: removed ${rules.length} NAT rule(s) of CNI network ${network}${r.code ? `: ${r.stderr.trim()}` : ''}`);
}

const PORTMAP_CHAINS = ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK'];

/** Whether the portmap plugin's base chains exist now (then they are not ours to remove). */
export async function portmapChainsPresent(): Promise<boolean> {
  const save = await run('iptables-save', ['-t', 'nat']);
  return save.stdout.includes(':CNI-HOSTPORT-');
}

/**
 * The portmap plugin creates its base chains on first use and never
 * removes them. Journaled only when they did not exist before the bench;
 * removed only when no port mapping of anyone is left in them.
 */
async function removePortmapChains(): Promise<void> {
  const save = await run('iptables-save', ['-t', 'nat']);
  if (save.code !== 0 || !save.stdout.includes(':CNI-HOSTPORT-DNAT') || /^-A CNI-HOSTPORT-DNAT /m.test(save.stdout)) return;
  const ipt = (...a: string[]) => run('iptables', ['-w', '-t', 'nat', ...a]);
  await ipt('-D', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'CNI-HOSTPORT-DNAT');
  await ipt('-D', 'OUTPUT', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'CNI-HOSTPORT-DNAT');
  await ipt('-D', 'POSTROUTING', '-m', 'comment', '--comment', 'CNI portfwd requiring masquerade', '-j', 'CNI-HOSTPORT-MASQ');
  for (const c of PORTMAP_CHAINS) await ipt('-F', c);
  for (const c of PORTMAP_CHAINS) await ipt('-X', c);
}

/**
 * Rules that name a subnet of ours, and the per-network chains they jump
 * to: netavark leaves them when a container's network was set up but its
 * start failed and no teardown ran. Our subnets are random and unused
 * elsewhere, so a rule naming one is ours.
 */
export async function removeSubnetRules(subnet: string, log: (s: string) => void): Promise<void> {
  for (const table of ['filter', 'nat']) {
    const save = await run('iptables-save', ['-t', table]);
    if (save.code !== 0) continue;
    const rules = save.stdout.split('\n').filter((l) => l.startsWith('-A ') && l.split(' ').includes(subnet));
    if (!rules.length) continue;
    const chains = [...new Set(rules.map((l) => / -j (NETAVARK-[0-9A-F]{8,}|CNI-[0-9a-f]{8,})$/.exec(l)?.[1]).filter((c): c is string => !!c))];
    const input = [`*${table}`, ...rules.map((l) => `-D ${l.slice(3)}`), ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
    const r = await run('iptables-restore', ['-w', '--noflush'], { input });
    log(`cleanup: removed ${rules.length} ${table} rule(s) naming ${subnet}${r.code ? `: ${r.stderr.trim()}` : ''}`);
  }
}
