import { copyFile, mkdir, mkdtemp, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/**
 * A minimal OCI bundle for runtime tests: a busybox rootfs (the static
 * /bin/busybox with applet symlinks) and a small valid config.json. The
 * real spec generator lives in src/runtime/oci/spec.ts; this stays minimal on
 * purpose (namespaces, /proc, /dev, default capabilities, rlimits under the
 * host's hard limits, no oomScoreAdj).
 */
const applets = ['sh', 'cat', 'echo', 'sleep', 'stty', 'ls', 'true', 'false', 'kill', 'ps', 'head', 'yes', 'printf', 'id', 'tr', 'dd', 'seq', 'touch', 'readlink', 'hostname'];

export const defaultCaps = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface TestBundle {
  dir: string;
  bundle: string;
  /** cgroup path used in config.json (one level, removed by runc delete). */
  cgroup: string;
  cleanup(): Promise<void>;
}

export async function makeRootfs(rootfs: string): Promise<void> {
  await mkdir(path.join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(path.join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  for (const a of applets) await symlink('busybox', path.join(rootfs, 'bin', a));
  await writeFile(path.join(rootfs, 'bin/not-executable'), 'just data\n', { mode: 0o644 });
}

export function minimalConfig(args: string[], opts: { tty?: boolean; cgroup: string; hostname?: string }): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: !!opts.tty,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: defaultCaps, effective: defaultCaps, permitted: defaultCaps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: opts.hostname ?? 'task',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      cgroupsPath: opts.cgroup,
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** A bundle under a fresh temp dir; `args` is the container's command. */
export interface BundleOptions {
  tty?: boolean;
  resources?: Record<string, unknown>;
  /** Join existing namespaces: type -> path (e.g. a pod sandbox's /proc/PID/ns/net). */
  joinNamespaces?: Record<string, string>;
}

export async function makeBundle(args: string[], opts: BundleOptions = {}): Promise<TestBundle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-bundle-'));
  const bundle = path.join(dir, 'bundle');
  const cgroup = `/berth-test-${randomBytes(6).toString('hex')}`;
  await makeRootfs(path.join(bundle, 'rootfs'));
  const config = minimalConfig(args, { ...opts, cgroup });
  const linux = config.linux as { resources?: unknown; namespaces: Array<{ type: string; path?: string }> };
  if (opts.resources) linux.resources = opts.resources;
  for (const ns of linux.namespaces) {
    if (opts.joinNamespaces?.[ns.type]) ns.path = opts.joinNamespaces[ns.type];
  }
  await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
  return {
    dir,
    bundle,
    cgroup,
    async cleanup() {
      // runc delete removes the cgroup; this catches one left by a failed test.
      for (const ctrl of ['memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'devices', 'freezer', 'cpuset', 'systemd', 'unified']) {
        for (let attempt = 0; attempt < 40; attempt++) {
          const busy = await rmdir(path.join('/sys/fs/cgroup', ctrl, cgroup)).then(
            () => false,
            (err: { code?: string }) => err.code === 'EBUSY',
          );
          if (!busy) break;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
