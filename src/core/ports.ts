import type { PortMapping } from './containers.ts';
import { berthError } from './errors.ts';

/**
 * Docker's `-p` syntax, shared by the CLI and the front doors:
 * `[hostIp:][hostPort[-hostPortEnd]:]containerPort[-containerPortEnd][/proto]`.
 * An empty host port (`-p 80`, `-p 127.0.0.1::80`) is 0: the network
 * service picks a free one. Ranges expand to one mapping per port; a host
 * range must be as long as the container range.
 */
export function parsePublish(spec: string): PortMapping[] {
  const bad = (why: string) => berthError('InvalidArgument', `invalid published port "${spec}": ${why}`);
  let rest = spec.trim();
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw bad(`unsupported protocol "${p}"`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) throw bad('unterminated IPv6 address');
    hostIp = rest.slice(1, end);
    rest = rest.slice(end + 1).replace(/^:/, '');
  }
  const parts = rest.split(':');
  if (parts.length > 3) throw bad('too many colons');
  let hostPart = '';
  const containerPart = parts[parts.length - 1];
  if (parts.length === 3) {
    hostIp = parts[0];
    hostPart = parts[1];
  } else if (parts.length === 2) hostPart = parts[0];
  if (hostIp && !/^[\d.]+$/.test(hostIp) && !hostIp.includes(':')) throw bad(`invalid host IP "${hostIp}"`);
  const [cStart, cEnd] = range(containerPart, bad);
  if (cStart === 0) throw bad('container port must be 1-65535');
  let hStart = 0;
  let hEnd = 0;
  if (hostPart) [hStart, hEnd] = range(hostPart, bad);
  const count = cEnd - cStart + 1;
  if (hostPart && hEnd - hStart + 1 !== count) {
    // docker allows a host range for one container port: pick any port of it; we take the first.
    if (count !== 1) throw bad('host and container port ranges differ in length');
    hEnd = hStart;
  }
  const out: PortMapping[] = [];
  for (let i = 0; i < count; i++) {
    out.push({ hostIp: hostIp || undefined, hostPort: hostPart ? hStart + i : 0, containerPort: cStart + i, protocol });
  }
  return out;
}

function range(s: string, bad: (why: string) => Error): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw bad(`invalid port "${s}"`);
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw bad(`invalid port range "${s}"`);
  return [a, b];
}

/** An image's ExposedPorts key ("80/tcp") as a publish-all mapping with a free host port. */
export function exposedToMapping(key: string): PortMapping {
  const [port, proto = 'tcp'] = key.split('/');
  const n = Number(port);
  if (!(n >= 1 && n <= 65535) || (proto !== 'tcp' && proto !== 'udp')) throw berthError('InvalidArgument', `invalid exposed port "${key}"`);
  return { hostPort: 0, containerPort: n, protocol: proto };
}

/** `berth port` lines: "80/tcp -> 0.0.0.0:32768". */
export function formatPortLine(p: PortMapping): string {
  const ip = p.hostIp || '0.0.0.0';
  return `${p.containerPort}/${p.protocol} -> ${ip.includes(':') ? `[${ip}]` : ip}:${p.hostPort}`;
}
