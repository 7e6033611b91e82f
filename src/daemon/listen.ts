import { chmod, chown, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import type { Server } from 'node:net';
import path from 'node:path';
import { berthError } from '../core/errors.ts';

/**
 * Listen on a unix socket at `address` with `mode` (octal text such as
 * "0600") and, when given, owned by `group`: the daemon's sockets (native
 * API, Docker API) all bind this way. A stale socket file is replaced.
 */
export async function listenUnix(server: Server, address: string, opts: { mode: string; group?: string }): Promise<void> {
  await rm(address, { force: true });
  await mkdir(path.dirname(address), { recursive: true, mode: 0o711 });
  // Bind in a private directory and move the socket into place once its mode
  // and group are set, so it is never reachable with the umask's mode.
  const privDir = await mkdtemp(path.join(path.dirname(address), '.berthd-'));
  const bindAt = Buffer.byteLength(path.join(privDir, 's')) < 108 ? path.join(privDir, 's') : address;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bindAt, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(bindAt, parseInt(opts.mode, 8));
    if (opts.group) await chown(bindAt, 0, await groupId(opts.group));
    if (bindAt !== address) await rename(bindAt, address);
  } finally {
    await rm(privDir, { recursive: true, force: true });
  }
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
