import { berthError } from '../../core/errors.ts';

/**
 * Linux capabilities by bit number (capability.h up to Linux 5.9; later
 * kernels add none). The order is the kernel's, so index = bit.
 */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default set (moby oci/caps DefaultCapabilities), in moby's order. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/**
 * Upper-case and prefix with CAP_ ("net_admin" -> "CAP_NET_ADMIN"); "ALL"
 * stays "ALL". An unknown name is InvalidArgument, as docker's
 * `unknown capability: "CAP_X"`.
 */
export function normalizeCapabilities(caps: readonly string[]): string[] {
  return caps.map((c) => {
    let n = c.trim().toUpperCase();
    if (n === 'ALL') return n;
    if (!n.startsWith('CAP_')) n = `CAP_${n}`;
    if (!ALL_CAPABILITIES.includes(n)) throw berthError('InvalidArgument', `unknown capability: "${n}"`);
    return n;
  });
}

export interface CapabilityOptions {
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  privileged?: boolean;
  /**
   * What "all" means on this host: the capabilities berthd itself holds in
   * its bounding set. A container can never be given more, and asking runc
   * for a capability we lack fails the start (here CAP_SYS_RESOURCE).
   */
  available?: readonly string[];
}

/**
 * The container's capability list, as moby's TweakCapabilities: privileged
 * gets all; `--cap-add ALL` gives all but the dropped ones; `--cap-drop ALL`
 * keeps only the added ones; otherwise default minus drops plus adds.
 */
export function containerCapabilities(opts: CapabilityOptions): string[] {
  const all = opts.available ? [...opts.available] : [...ALL_CAPABILITIES];
  if (opts.privileged) return all;
  const add = normalizeCapabilities(opts.capAdd ?? []);
  const drop = normalizeCapabilities(opts.capDrop ?? []);
  let caps: string[];
  if (add.includes('ALL')) caps = all.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  return [...new Set(caps)];
}

/** The bit mask of a capability list, as /proc/PID/status prints it (16 hex digits). */
export function capabilityMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const bit = ALL_CAPABILITIES.indexOf(c);
    if (bit < 0) throw berthError('InvalidArgument', `unknown capability: "${c}"`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}

/** The capability names set in a /proc/PID/status style hex mask. */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}
