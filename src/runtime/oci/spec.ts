import type { ContainerConfig } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';
import { containerCapabilities } from './caps.ts';
import type { Capabilities, Device, ImageConfig, Mount, Namespace, NamespaceType, Seccomp, Spec } from './oci-types.ts';
import { OCI_VERSION } from './oci-types.ts';
import { defaultSeccomp } from './seccomp-default.ts';
import type { EtcFiles, ResolvedMount } from './spec-mounts.ts';
import { composeMounts, etcFileMounts, resolvedToOci, standardMounts, tmpfsMount } from './spec-mounts.ts';
import { buildResources, buildRlimits } from './spec-resources.ts';

/**
 * buildSpec: the OCI runtime spec (config.json) of a container, from the
 * image config, the container's config and facts the caller gathered. Pure:
 * no I/O, so every default is unit-tested without root.
 *
 * Defaults are Docker's (moby oci/defaults.go, daemon/oci_linux.go): the 14
 * default capabilities, the default seccomp profile, masked and read-only
 * /proc and /sys paths, a device cgroup that denies all but the standard
 * devices, new pid/ipc/uts/mount/network namespaces (no cgroup namespace,
 * as Docker on cgroup v1), no rlimits and no oomScoreAdj unless asked (the
 * runtime inherits ours; an asked one is raised to berthd's own, since
 * lowering oom_score_adj needs CAP_SYS_RESOURCE).
 *
 *   const spec = buildSpec({ image, config, user: { uid: 0, gid: 0, additionalGids: [] },
 *     rootfs: '/run/berth/c/abc/rootfs', host: { hostname: 'abc123', cgroupsPath: '/berth/abc' } });
 *
 * Throws InvalidArgument for values no runtime would accept (an unknown
 * capability, a relative working dir, no command, a ulimit over the host's).
 */

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';

export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
const CGROUP_DIR = '/sys/fs/cgroup';

export interface HostFacts {
  /** Default hostname (docker: the first 12 characters of the id); config.hostname wins. */
  hostname: string;
  /** Cgroup path for the runtime (cgroupfs style "/berth/<id>" or systemd "slice:prefix:name"). */
  cgroupsPath: string;
  /** Hard rlimits of berthd by docker ulimit name, e.g. { nofile: 20000 }; no ulimit may exceed them. */
  rlimitHard?: Record<string, number>;
  /** Namespaces to join rather than create (netns made by CNI, another container's ns). */
  namespacePaths?: Partial<Record<NamespaceType, string>>;
  /** Namespaces shared with the host (not created); network mode "host" implies network. */
  hostNamespaces?: NamespaceType[];
  /** Capabilities berthd holds: what "all" means (privileged, --cap-add ALL). */
  capabilities?: readonly string[];
  swapAccounting?: boolean;
  /** Online CPUs, to refuse --cpus and --cpuset-cpus beyond them. */
  cpuCount?: number;
  /** Host devices to create in a privileged container. */
  devices?: Device[];
  /** The container's --device nodes, resolved on the host (path = where they appear inside). */
  mappedDevices?: Array<Device & { access: string }>;
  /** Host path of the init binary (tini or catatonit) for --init. */
  initPath?: string;
  /** A profile the caller loaded for `seccompProfile: PATH`. */
  seccompProfile?: Seccomp;
  /** Whether the hugetlb cgroup controller exists; false drops hugepage limits, which runc could not apply (and the host has no huge pages to limit). */
  hugetlb?: boolean;
  /** berthd's own oom_score_adj: a container's may not go below it (lowering needs CAP_SYS_RESOURCE). */
  oomScoreAdj?: number;
  /** Mount propagation of the rootfs: rslave or rshared when a bind needs it to reach the host. */
  rootfsPropagation?: string;
  arch?: string;
  kernel?: [number, number];
  /** Whether the kernel runs x32 system calls (core/sys.ts kernelRunsX32); false leaves x32 out of the default seccomp profile. */
  x32?: boolean;
}

export interface SpecInput {
  image: ImageConfig;
  config: ContainerConfig;
  user: { uid: number; gid: number; additionalGids?: number[] };
  rootfs: string;
  mounts?: ResolvedMount[];
  etcFiles?: EtcFiles;
  host: HostFacts;
}

/**
 * docker's ReplaceOrAppendEnvValues: later "K=V" replace earlier "K=...";
 * a bare "K" removes K.
 */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  const key = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
  for (const o of overrides) {
    const k = key(o);
    const i = out.findIndex((e) => key(e) === k);
    if (!o.includes('=')) {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = o;
    else out.push(o);
  }
  return out;
}

/**
 * docker's rules: an --entrypoint (even an empty one) replaces the image's
 * and drops the image's Cmd; a command given on the command line replaces
 * the image's Cmd.
 */
export function processArgs(image: ImageConfig, config: ContainerConfig): string[] {
  let args: string[];
  if (config.entrypoint !== undefined) args = [...config.entrypoint, ...(config.cmd ?? [])];
  else {
    const cmd = config.cmd && config.cmd.length ? config.cmd : (image.Cmd ?? []);
    args = [...(image.Entrypoint ?? []), ...cmd];
  }
  if (args.length && args[0] === '') args = args.slice(1);
  if (!args.length) throw berthError('InvalidArgument', 'no command specified');
  return args;
}

function namespaces(config: ContainerConfig, host: HostFacts): Namespace[] {
  const shared = new Set(host.hostNamespaces ?? []);
  if (config.network?.mode === 'host') shared.add('network');
  const out: Namespace[] = [];
  for (const type of ['mount', 'network', 'uts', 'pid', 'ipc'] as const) {
    const path = host.namespacePaths?.[type];
    if (path) out.push({ type, path });
    else if (!shared.has(type)) out.push({ type });
  }
  return out;
}

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/**
 * docker's rule for --sysctl: only parameters of a namespace the container
 * has to itself (net.* with its own network namespace, the IPC ones with its
 * own IPC namespace); anything else would change the host.
 */
function checkSysctls(config: ContainerConfig): Record<string, string> | undefined {
  const entries = Object.entries(config.sysctls ?? {});
  if (!entries.length) return undefined;
  // The netns berth makes for a container is joined by path, yet is the container's own.
  const mode = config.network?.mode ?? 'bridge';
  const ownNetwork = mode !== 'host' && !mode.startsWith('container:') && !config.sharedNamespaces?.network;
  const ownIpc = config.ipcMode !== 'host' && !config.ipcMode?.startsWith('container:');
  for (const [key] of entries) {
    if (key.startsWith('net.')) {
      if (!ownNetwork) throw berthError('InvalidArgument', `sysctl "${key}" not allowed: the container does not have a network namespace of its own`);
    } else if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (!ownIpc) throw berthError('InvalidArgument', `sysctl "${key}" not allowed: the container does not have an IPC namespace of its own`);
    } else {
      throw berthError('InvalidArgument', `sysctl "${key}" is not allowed: only namespaced parameters (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) can be set for a container`);
    }
  }
  return Object.fromEntries(entries);
}

function capabilities(caps: string[], uid: number): Capabilities {
  // moby: no inheritable set (CVE-2022-24769); non-root keeps only the
  // bounding set, as execve would leave it.
  return uid === 0 ? { bounding: caps, effective: [...caps], permitted: [...caps] } : { bounding: caps };
}

function seccomp(config: ContainerConfig, host: HostFacts, caps: string[]): Seccomp | undefined {
  if (config.privileged || config.seccompProfile === 'unconfined') return undefined;
  if (config.seccompProfile) {
    if (!host.seccompProfile) throw berthError('InvalidArgument', `seccomp profile "${config.seccompProfile}" was not loaded`);
    return host.seccompProfile;
  }
  return defaultSeccomp(caps, { arch: host.arch, kernel: host.kernel, x32: host.x32 });
}

export function buildSpec(input: SpecInput): Spec {
  const { image, config, host } = input;
  const hostname = config.hostname || host.hostname;
  const ns = namespaces(config, host);
  const ownUts = ns.some((n) => n.type === 'uts' && !n.path);

  let args = processArgs(image, config);
  const userMounts: Mount[] = (input.mounts ?? []).map(resolvedToOci);
  for (const [target, opts] of Object.entries(config.tmpfs ?? {})) userMounts.push(tmpfsMount(target, opts));
  if (config.init) {
    if (!host.initPath) throw berthError('FailedPrecondition', '--init: no init binary is configured');
    args = [INIT_PATH_IN_CONTAINER, '--', ...args];
    userMounts.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: host.initPath, options: ['rbind', 'rprivate', 'ro'] });
  }

  const cwd = config.workingDir || image.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw berthError('InvalidArgument', `the working directory '${cwd}' is invalid, it needs to be an absolute path`);

  const defaults = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, ...(config.tty ? ['TERM=xterm'] : [])];
  const env = mergeEnv(mergeEnv(defaults, image.Env ?? []), config.env ?? []);

  const caps = containerCapabilities({ capAdd: config.capAdd, capDrop: config.capDrop, privileged: config.privileged, available: host.capabilities });
  const rlimits = buildRlimits(config.ulimits, host.rlimitHard);
  const resources = buildResources(config.resources, { privileged: config.privileged, swapAccounting: host.swapAccounting, cpuCount: host.cpuCount, hugetlb: host.hugetlb });
  const mapped = host.mappedDevices ?? [];
  if (!config.privileged) for (const d of mapped) resources.devices?.push({ allow: true, type: d.type as 'c' | 'b', major: d.major, minor: d.minor, access: d.access });
  const sysctl = checkSysctls(config);

  const mounts = composeMounts(standardMounts({ shmSize: config.shmSize, privileged: config.privileged }), etcFileMounts(input.etcFiles ?? {}), userMounts);
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: !!config.tty,
      // The terminal's size from the first byte: a resize after start races the program's first look at it.
      ...(config.tty && config.consoleSize ? { consoleSize: checkConsoleSize(config.consoleSize) } : {}),
      user: { uid: input.user.uid, gid: input.user.gid, ...(input.user.additionalGids?.length ? { additionalGids: [...input.user.additionalGids] } : {}) },
      args,
      env,
      cwd,
      capabilities: capabilities(caps, input.user.uid),
      ...(rlimits.length ? { rlimits } : {}),
      ...(config.noNewPrivileges ? { noNewPrivileges: true } : {}),
      ...(config.oomScoreAdj !== undefined ? { oomScoreAdj: Math.max(config.oomScoreAdj, host.oomScoreAdj ?? 0) } : {}),
    },
    root: { path: input.rootfs, ...(config.readOnlyRootfs ? { readonly: true } : {}) },
    ...(ownUts ? { hostname, ...(config.domainname ? { domainname: config.domainname } : {}) } : {}),
    mounts,
    linux: {
      namespaces: ns,
      cgroupsPath: host.cgroupsPath,
      resources,
      ...(config.privileged
        ? { devices: [...(host.devices ?? []), ...mapped.map(({ access: _, ...d }) => d)] }
        : {
            ...(mapped.length ? { devices: mapped.map(({ access: _, ...d }) => d) } : {}),
            maskedPaths: [...(config.maskedPaths ?? MASKED_PATHS)],
            readonlyPaths: [...(config.readonlyPaths ?? [...READONLY_PATHS, ...cgroupReadOnly(mounts)])],
          }),
      ...(sysctl ? { sysctl } : {}),
      ...(host.rootfsPropagation ? { rootfsPropagation: host.rootfsPropagation } : {}),
    },
  };
  const sc = seccomp(config, host, caps);
  if (sc) spec.linux.seccomp = sc;
  if (config.annotations && Object.keys(config.annotations).length) spec.annotations = { ...config.annotations };
  return spec;
}

/**
 * On cgroup v1, runc (since 1.0, opencontainers/runc 55d5c99) mounts a
 * read-only `cgroup` mount as a writable tmpfs holding read-only binds of
 * the controllers: the tmpfs itself stays writable. As a read-only path the
 * runtime binds it onto itself and remounts that read-only, so the whole
 * tree is read-only as in Docker. Not when the user mounts something else
 * there.
 */
function cgroupReadOnly(mounts: Mount[]): string[] {
  const m = mounts.find((x) => x.destination === CGROUP_DIR);
  return m?.type === 'cgroup' && m.options?.includes('ro') ? [CGROUP_DIR] : [];
}

function checkConsoleSize(size: { height: number; width: number }): { height: number; width: number } {
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) > 0 && (n as number) <= 0xffff;
  if (!ok(size.height) || !ok(size.width)) throw berthError('InvalidArgument', `invalid console size ${JSON.stringify(size)}: height and width must be whole numbers from 1 to 65535`);
  return { height: size.height, width: size.width };
}
