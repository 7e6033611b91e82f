import net from 'node:net';
import { dgramModule } from '../core/builtins.ts';
import type { PortMapping } from '../core/containers.ts';
import { berthError } from '../core/errors.ts';

/**
 * Host port bookkeeping for published ports. Ports are forwarded by
 * iptables DNAT (host-nat.ts), so no process holds them: conflicts among
 * berth's own containers are found in the records, and a host process
 * already listening is found by trying to bind.
 */
export function samePort(a: PortMapping, b: PortMapping): boolean {
  if (a.protocol !== b.protocol || a.hostPort !== b.hostPort) return false;
  const ai = a.hostIp || '0.0.0.0';
  const bi = b.hostIp || '0.0.0.0';
  return ai === bi || ai === '0.0.0.0' || bi === '0.0.0.0';
}

export function describeBind(p: PortMapping): string {
  return `${p.hostIp || '0.0.0.0'}:${p.hostPort}`;
}

/** Bind and release `port` (0 = any) on `ip`; resolves to the port the kernel gave, or throws errno errors. */
export function probePort(ip: string, port: number, protocol: 'tcp' | 'udp'): Promise<number> {
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = dgramModule().createSocket(ip.includes(':') ? 'udp6' : 'udp4');
      s.once('error', (err) => {
        s.close();
        reject(err);
      });
      s.bind({ address: ip, port, exclusive: true }, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: ip, port, exclusive: true }, () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

/**
 * Give every mapping with hostPort 0 a free host port and check the others
 * against `taken` (berth's published ports) and against host listeners.
 * Conflict reads like docker's "port is already allocated".
 */
export async function assignHostPorts(wanted: PortMapping[], taken: PortMapping[]): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  const all = [...taken];
  for (const w of wanted) {
    const ip = w.hostIp || '0.0.0.0';
    let m: PortMapping;
    if (w.hostPort === 0) {
      let found: PortMapping | undefined;
      for (let i = 0; i < 64 && !found; i++) {
        const port = await probePort(ip, 0, w.protocol).catch((err) => {
          throw bindError(w, err);
        });
        const cand = { ...w, hostPort: port };
        if (!all.some((t) => samePort(t, cand))) found = cand;
      }
      if (!found) throw berthError('ResourceExhausted', `no free host port for ${w.containerPort}/${w.protocol}`);
      m = found;
    } else {
      if (all.some((t) => samePort(t, w))) throw berthError('Conflict', `Bind for ${describeBind(w)} failed: port is already allocated`);
      await probePort(ip, w.hostPort, w.protocol).catch((err) => {
        throw bindError(w, err);
      });
      m = w;
    }
    out.push(m);
    all.push(m);
  }
  return out;
}

function bindError(p: PortMapping, err: unknown): Error {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') return berthError('Conflict', `Bind for ${describeBind(p)} failed: port is already allocated (a host process listens on it)`, err);
  if (code === 'EADDRNOTAVAIL') return berthError('InvalidArgument', `Bind for ${describeBind(p)} failed: ${p.hostIp} is not an address of this host`, err);
  if (code === 'EACCES') return berthError('PermissionDenied', `Bind for ${describeBind(p)} failed: permission denied`, err);
  return berthError('Unknown', `Bind for ${describeBind(p)} failed: ${(err as Error).message}`, err);
}
