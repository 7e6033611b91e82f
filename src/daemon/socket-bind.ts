import { chmod, chown, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import type { Server } from 'node:net';
import path from 'node:path';
import { berthError } from '../core/errors.ts';

/**
 * Put a listening unix socket at `address` with `mode` and `group` (the
 * daemon's socket_mode and socket_group) set before anyone can reach it:
 * `listen` binds in a private directory and the socket is renamed into
 * place once its mode and group are right, so it is never reachable with
 * the umask's mode. A stale socket at `address` is removed first. A path too
 * long for a socket address in the private directory is bound in place.
 */
export async function bindSocket(address: string, opts: { mode: string; group?: string }, listen: (at: string) => Promise<void>): Promise<void> {
  await rm(address, { force: true });
  await mkdir(path.dirname(address), { recursive: true, mode: 0o711 });
  const privDir = await mkdtemp(path.join(path.dirname(address), '.berthd-'));
  const bindAt = Buffer.byteLength(path.join(privDir, 's')) < 108 ? path.join(privDir, 's') : address;
  try {
    await listen(bindAt);
    await chmod(bindAt, parseInt(opts.mode, 8));
    if (opts.group) await chown(bindAt, 0, await groupId(opts.group));
    if (bindAt !== address) await rename(bindAt, address);
  } finally {
    await rm(privDir, { recursive: true, force: true });
  }
}

/** bindSocket for a node:net (or node:http) server: the native API's and the Docker API's sockets. */
export function listenUnix(server: Server, address: string, opts: { mode: string; group?: string }): Promise<void> {
  return bindSocket(address, opts, (at) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, () => {
        server.off('error', reject);
        resolve();
      });
    }),
  );
}

async function groupId(name: string): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  const text = await readFile('/etc/group', 'utf8');
  for (const line of text.split('\n')) {
    const [g, , gid] = line.split(':');
    if (g === name) return Number(gid);
  }
  throw berthError('InvalidArgument', `config: daemon.socket_group: no group "${name}"`);
}
