import { berthError } from '../core/errors.ts';

/**
 * IPv4 subnet arithmetic for network creation: parsing CIDRs, overlap
 * checks and picking a free subnet from a pool. Pure; no I/O.
 */
export interface Subnet {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
}

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse "10.1.2.0/24"; host bits must be zero, as docker requires. */
export function parseSubnet(s: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s.trim());
  const addr = m ? parseIPv4(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (addr === undefined || !(prefix >= 1 && prefix <= 30)) throw berthError('InvalidArgument', `invalid subnet "${s}": expected an IPv4 CIDR such as 10.1.2.0/24 with a prefix of 1 to 30`);
  if ((addr & ~mask(prefix)) >>> 0 !== 0) throw berthError('InvalidArgument', `invalid subnet "${s}": host bits are set (did you mean ${formatSubnet({ base: (addr & mask(prefix)) >>> 0, prefix })}?)`);
  return { base: addr, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIPv4(s.base)}/${s.prefix}`;
}

export function contains(s: Subnet, ip: number): boolean {
  return (ip & mask(s.prefix)) >>> 0 === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(p)) >>> 0 === (b.base & mask(p)) >>> 0;
}

/** The first usable address, docker's default gateway. */
export function firstHost(s: Subnet): string {
  return formatIPv4(s.base + 1);
}

/** Check that `gateway` lies inside `subnet` and is neither its network nor broadcast address. */
export function validateGateway(subnet: Subnet, gateway: string): void {
  const g = parseIPv4(gateway);
  if (g === undefined) throw berthError('InvalidArgument', `invalid gateway "${gateway}": not an IPv4 address`);
  const last = (subnet.base | ~mask(subnet.prefix)) >>> 0;
  if (!contains(subnet, g) || g === subnet.base || g === last) {
    throw berthError('InvalidArgument', `gateway ${gateway} is not a usable address of subnet ${formatSubnet(subnet)}`);
  }
}

/** The first `size`-prefix subnet of `pool` that overlaps none of `used`. */
export function pickSubnet(pool: Subnet, size: number, used: Subnet[]): Subnet | undefined {
  if (size < pool.prefix) return undefined;
  const count = 2 ** (size - pool.prefix);
  const step = 2 ** (32 - size);
  for (let i = 0; i < count; i++) {
    const cand = { base: (pool.base + i * step) >>> 0, prefix: size };
    if (!used.some((u) => overlaps(u, cand))) return cand;
  }
  return undefined;
}
