import type { Resources as ConfigResources, Ulimit } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';
import type { DeviceCgroup, Resources, Rlimit } from './oci-types.ts';

/**
 * Cgroup resources, the device cgroup and rlimits of a container's spec,
 * with Docker's defaults: no limits unless asked, a device cgroup that
 * denies everything but the standard character devices, and no rlimits
 * beyond what the runtime inherits.
 */

export const CPU_PERIOD = 100_000;

const char = (major: number, minor: number | undefined, access = 'rwm'): DeviceCgroup =>
  minor === undefined ? { allow: true, type: 'c', major, access } : { allow: true, type: 'c', major, minor, access };

/**
 * Deny all; allow null, zero, full, random, urandom, tty, console, ptmx and
 * the pts devices; deny /dev/fuse explicitly (moby). No "c *:* m" mknod
 * wildcard here: devices cgroup v1 cannot then deny fuse ("cannot punch hole
 * in existing wildcard rule"); runc appends its own mknod rules after ours.
 */
export function defaultDeviceRules(): DeviceCgroup[] {
  return [
    { allow: false, access: 'rwm' },
    char(1, 3),
    char(1, 5),
    char(1, 7),
    char(1, 8),
    char(1, 9),
    char(5, 0),
    char(5, 1),
    char(5, 2),
    char(136, undefined),
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
  ];
}

export interface ResourceOptions {
  privileged?: boolean;
  /** memory.memsw.* exists (swap accounting on); without it a swap limit cannot be set. */
  swapAccounting?: boolean;
  /** Online CPUs of the host, to refuse --cpus and --cpuset-cpus it cannot give. */
  cpuCount?: number;
  /** false: the host has no hugetlb controller, so hugepage limits are left out (runc fails on them). */
  hugetlb?: boolean;
}

function checkCpus(r: ConfigResources, cpuCount: number | undefined): void {
  if (!cpuCount) return;
  if (r.nanoCpus && r.nanoCpus > cpuCount * 1e9) {
    throw berthError('InvalidArgument', `range of CPUs is from 0.01 to ${cpuCount}.00, as there are only ${cpuCount} CPUs available`);
  }
  if (r.cpusetCpus) {
    for (const part of r.cpusetCpus.split(',')) {
      const [lo, hi = lo] = part.split('-').map(Number);
      if (!(lo <= hi) || hi >= cpuCount) {
        throw berthError('InvalidArgument', `Requested CPUs are not available - requested ${r.cpusetCpus}, available: 0-${cpuCount - 1}`);
      }
    }
  }
}

/**
 * docker's rules: --memory-swap is memory+swap (-1 unlimited); with only
 * --memory it defaults to twice the memory when swap is accounted. --cpus
 * becomes a CFS quota over a 100ms period and may not be combined with an
 * explicit quota or period.
 */
export function buildResources(r: ConfigResources = {}, opts: ResourceOptions = {}): Resources {
  checkCpus(r, opts.cpuCount);
  const out: Resources = { devices: opts.privileged ? [{ allow: true, access: 'rwm' }] : defaultDeviceRules() };
  if (r.memory !== undefined && r.memory > 0) {
    if (r.memory < 6 * 1024 * 1024) throw berthError('InvalidArgument', 'Minimum memory limit allowed is 6MB');
    out.memory = { limit: r.memory };
    if (opts.swapAccounting) {
      const swap = r.memorySwap ?? 0;
      if (swap > 0 && swap < r.memory) {
        throw berthError('InvalidArgument', 'Minimum memoryswap limit should be larger than memory limit, see usage');
      }
      out.memory.swap = swap === 0 ? r.memory * 2 : swap;
    }
  } else if (r.memorySwap !== undefined && r.memorySwap > 0) {
    throw berthError('InvalidArgument', 'You should always set the Memory limit when using Memoryswap limit, see usage');
  }
  const cpu: NonNullable<Resources['cpu']> = {};
  if (r.nanoCpus !== undefined && r.nanoCpus > 0) {
    if (r.cpuQuota || r.cpuPeriod) {
      throw berthError('InvalidArgument', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
    }
    cpu.period = CPU_PERIOD;
    cpu.quota = Math.round((r.nanoCpus * CPU_PERIOD) / 1e9);
  } else {
    if (r.cpuPeriod) cpu.period = r.cpuPeriod;
    if (r.cpuQuota) cpu.quota = r.cpuQuota;
  }
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (r.pidsLimit !== undefined && r.pidsLimit > 0) out.pids = { limit: r.pidsLimit };
  if (r.hugepageLimits?.length && opts.hugetlb !== false) {
    for (const h of r.hugepageLimits) {
      if (!/^\d+[KMG]B$/.test(h.pageSize)) throw berthError('InvalidArgument', `hugepage limit: page size "${h.pageSize}" is not of the form 2MB or 1GB`);
    }
    out.hugepageLimits = r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: h.limit }));
  }
  return out;
}

/** The rlimit names docker's --ulimit accepts. */
export const ULIMIT_NAMES = [
  'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc',
  'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
];

/**
 * docker's -1 is RLIM_INFINITY (2^64-1), which a JSON number from JS cannot
 * carry exactly; 2^53-1 is beyond every real limit, and a finite host hard
 * limit refuses it anyway.
 */
const unlimitedAsNumber = (v: number): number => (v < 0 ? Number.MAX_SAFE_INTEGER : v);

/**
 * OCI rlimits for the user's ulimits. A hard limit above the host's (given
 * by the caller from getrlimit) is refused here with a clear message rather
 * than failing inside runc, since raising it needs CAP_SYS_RESOURCE.
 */
export function buildRlimits(ulimits: readonly Ulimit[] = [], hostHard: Record<string, number> = {}): Rlimit[] {
  const out: Rlimit[] = [];
  for (const given of ulimits) {
    const name = given.name.toLowerCase();
    if (!ULIMIT_NAMES.includes(name)) throw berthError('InvalidArgument', `invalid ulimit type: ${given.name}`);
    const u = { soft: unlimitedAsNumber(given.soft), hard: unlimitedAsNumber(given.hard) };
    if (u.soft > u.hard) {
      throw berthError('InvalidArgument', `invalid ulimit argument: ${name}=${u.soft}:${u.hard}: soft limit must be less than or equal to hard limit`);
    }
    const limit = hostHard[name];
    if (limit !== undefined && limit >= 0 && u.hard > limit) {
      throw berthError('InvalidArgument', `ulimit ${name}: hard limit ${given.hard === -1 ? 'unlimited' : given.hard} exceeds the host's hard limit ${limit}`);
    }
    const rl = { type: `RLIMIT_${name.toUpperCase()}`, soft: u.soft, hard: u.hard };
    const i = out.findIndex((r) => r.type === rl.type);
    if (i >= 0) out[i] = rl;
    else out.push(rl);
  }
  return out;
}
