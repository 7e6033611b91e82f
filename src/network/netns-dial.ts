import { closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { berthError } from '../core/errors.ts';
import { childStatusAsync, pidfdGetfd, pidfdOpen, spawnPiped } from '../core/sys.ts';

/** native/build/berth-nsconnect, from src/network and dist/network alike. */
export const defaultNsConnectPath = path.resolve(import.meta.dirname, '../../native/build/berth-nsconnect');

/**
 * A TCP connection to `port` on the loopback of the network namespace at
 * `netnsPath` (a pod's), for the CRI's port forwarding. berthd never
 * enters the namespace itself: `berth-nsconnect` (native/nsconnect.c) does,
 * connects, and holds the socket at its descriptor 3 until berthd has taken
 * a copy with pidfd_getfd(2); then its stdin is closed and it exits.
 *
 * Errors: Unavailable naming the port when nothing listens there (or the
 * connection fails otherwise), NotFound when the namespace file is gone.
 * The socket half-closes: an end from either side is passed on, not
 * turned into a full close.
 */
export async function dialInNetns(netnsPath: string, port: number, helper: string = defaultNsConnectPath): Promise<net.Socket> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw berthError('InvalidArgument', `port ${port} is out of range`);
  let child: Awaited<ReturnType<typeof spawnPiped>>;
  try {
    child = await spawnPiped(helper, [netnsPath, String(port)], {});
  } catch (err) {
    throw berthError('Internal', `start ${helper}`, err);
  }
  return new Promise((resolve, reject) => {
    const { pid } = child;
    closeSync(child.stderr);
    const out = new net.Socket({ fd: child.stdout, readable: true, writable: false });
    const stdin = new net.Socket({ fd: child.stdin, readable: false, writable: true });
    stdin.on('error', () => {});
    out.on('error', () => {});
    let text = '';
    let settled = false;
    const settle = (err: Error | undefined, sock?: net.Socket) => {
      if (settled) return;
      settled = true;
      stdin.end();
      if (err) reject(err);
      else resolve(sock!);
    };
    out.on('data', (d: Buffer) => {
      text += d.toString();
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      const line = text.slice(0, nl);
      if (line !== 'ok') {
        const msg = line.replace(/^error: /, '');
        return settle(berthError(/No such file/.test(msg) ? 'NotFound' : 'Unavailable', msg));
      }
      let fd: number;
      try {
        const pidfd = pidfdOpen(pid);
        try {
          fd = pidfdGetfd(pidfd, 3);
        } finally {
          closeSync(pidfd);
        }
      } catch (err) {
        return settle(berthError('Internal', 'take the connected socket from berth-nsconnect', err));
      }
      settle(undefined, new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true }));
    });
    out.once('close', () => {
      settle(berthError('Internal', `berth-nsconnect ended without an answer${text ? `: ${text.trim()}` : ''}`));
      // Its stdout closes as it exits: reaped at once or within a few polls.
      let delay = 0;
      const reap = () => {
        childStatusAsync(pid).then(
          (code) => {
            if (code !== undefined) return;
            delay = Math.min(delay + 1, 20);
            setTimeout(reap, delay);
          },
          () => {},
        );
      };
      reap();
    });
  });
}
