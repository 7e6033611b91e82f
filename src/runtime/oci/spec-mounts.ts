import { berthError } from '../../core/errors.ts';
import type { Mount } from './oci-types.ts';

/**
 * The mounts of a container's OCI spec: Docker's standard set (moby
 * oci/defaults.go), the /etc files berth writes, and the user's binds,
 * volumes and tmpfs. A user mount replaces a standard one at the same
 * destination; a user mount on /dev also drops the standard mounts under it.
 */

/** A bind or tmpfs the caller resolved: volumes arrive as binds of their host directory. */
export interface ResolvedMount {
  type: 'bind' | 'tmpfs';
  /** Host path (bind); ignored for tmpfs. */
  source?: string;
  target: string;
  readOnly?: boolean;
  /** Propagation (rprivate, rshared, ...), tmpfs size=/mode=, nosuid, ... ; "z"/"Z" are SELinux-only and dropped. */
  options?: string[];
}

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

export interface StandardMountOptions {
  shmSize?: number;
  privileged?: boolean;
}

export function standardMounts(opts: StandardMountOptions = {}): Mount[] {
  const sysMode = opts.privileged ? 'rw' : 'ro';
  const shmKiB = Math.floor((opts.shmSize ?? DEFAULT_SHM_SIZE) / 1024);
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysMode] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', sysMode] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmKiB}k`] },
  ];
}

const OPPOSITES: Record<string, string> = {
  exec: 'noexec', noexec: 'exec', suid: 'nosuid', nosuid: 'suid', dev: 'nodev', nodev: 'dev',
  ro: 'rw', rw: 'ro', atime: 'noatime', noatime: 'atime', diratime: 'nodiratime', nodiratime: 'diratime',
};

/** Defaults first, each user option replacing its opposite and any earlier value of the same key. */
export function mergeMountOptions(defaults: readonly string[], user: readonly string[]): string[] {
  let out = [...defaults];
  for (const o of user) {
    if (!o) continue;
    const key = o.includes('=') ? o.slice(0, o.indexOf('=') + 1) : undefined;
    out = out.filter((d) => d !== o && d !== OPPOSITES[o] && !(key && d.startsWith(key)));
    out.push(o);
  }
  return out;
}

/** Docker's `--tmpfs PATH[:OPTIONS]`: noexec,nosuid,nodev unless the user says otherwise. */
export function tmpfsMount(target: string, options: string): Mount {
  const user = options ? options.split(',').map((s) => s.trim()) : [];
  return { destination: target, type: 'tmpfs', source: 'tmpfs', options: mergeMountOptions(['noexec', 'nosuid', 'nodev'], user) };
}

export function resolvedToOci(m: ResolvedMount): Mount {
  const user = (m.options ?? []).filter((o) => o !== 'z' && o !== 'Z');
  if (m.type === 'tmpfs') {
    const opts = mergeMountOptions(['nosuid', 'nodev'], user);
    return { destination: m.target, type: 'tmpfs', source: 'tmpfs', options: m.readOnly ? mergeMountOptions(opts, ['ro']) : opts };
  }
  if (!m.source) throw berthError('InvalidArgument', `bind mount on "${m.target}": no source`);
  const hasPropagation = user.some((o) => PROPAGATIONS.includes(o));
  const base = ['rbind', ...(hasPropagation ? [] : ['rprivate'])];
  const opts = mergeMountOptions(base, user.filter((o) => o !== 'bind' && o !== 'rbind'));
  return { destination: m.target, type: 'bind', source: m.source, options: mergeMountOptions(opts, [m.readOnly ? 'ro' : 'rw']) };
}

export interface EtcFiles {
  hosts?: string;
  hostname?: string;
  resolvConf?: string;
}

export function etcFileMounts(files: EtcFiles, readOnly = false): Mount[] {
  const out: Mount[] = [];
  const add = (destination: string, source: string | undefined) => {
    if (source) out.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', readOnly ? 'ro' : 'rw'] });
  };
  add('/etc/resolv.conf', files.resolvConf);
  add('/etc/hostname', files.hostname);
  add('/etc/hosts', files.hosts);
  return out;
}

export function cleanPath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (!seg || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

/**
 * docker's checks of a mount's destination (moby volume/mounts
 * linux_parser.go): present, never the container's root, absolute. A mount
 * over / would hide the image and let the runtime create the container's
 * /dev inside the mount's source on the host.
 */
export function checkMountTarget(type: string, target: string): void {
  const fail = (why: string) => berthError('InvalidArgument', `invalid mount config for type "${type}": ${why}`);
  if (!target) throw fail('field Target must not be empty');
  if (cleanPath(target) === '/') throw fail("invalid specification: destination can't be '/'");
  if (!target.startsWith('/')) throw fail(`invalid mount path: '${target}' mount path must be absolute`);
}

const depth = (p: string) => (p === '/' ? 0 : p.split('/').length - 1);

/**
 * Standard mounts not overridden by the user, then the /etc files, then the
 * user's mounts with parents before children (docker's sortMounts), so a
 * bind on /data/sub lands inside a volume on /data.
 */
export function composeMounts(standard: Mount[], etc: Mount[], user: Mount[]): Mount[] {
  for (const m of user) {
    checkMountTarget(m.type ?? 'bind', m.destination);
    m.destination = cleanPath(m.destination);
  }
  const seen = new Set<string>();
  for (const m of user) {
    if (seen.has(m.destination)) throw berthError('InvalidArgument', `duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  const userDev = seen.has('/dev');
  const keep = (m: Mount) => !seen.has(m.destination) && !(userDev && m.destination.startsWith('/dev/'));
  const sorted = user.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i);
  return [...standard.filter(keep), ...etc.filter(keep), ...sorted.map((x) => x.m)];
}
