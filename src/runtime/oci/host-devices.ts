import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { DeviceMapping } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { Device } from './oci-types.ts';

/**
 * The host's device nodes for a privileged container, as runc's
 * devices.HostDevices (which moby uses): every character and block device
 * under /dev, skipping the directories the runtime mounts itself (pts, shm,
 * mqueue) and /dev/console, which runc sets up from the container's tty.
 * Read at each start, so devices plugged in since the daemon started count.
 */
const SKIP_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

export async function hostDevices(ctx: Ctx, root = '/dev'): Promise<Device[]> {
  const out: Device[] = [];
  const walk = async (dir: string): Promise<void> => {
    ctx.signal.throwIfAborted();
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const p = path.join(dir, name);
      const st = await lstat(p, { bigint: true }).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) {
        if (!SKIP_DIRS.has(name)) await walk(p);
        continue;
      }
      if (p === path.join(root, 'console')) continue;
      const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
      if (!type) continue;
      out.push({ type, path: p, major: deviceMajor(st.rdev), minor: deviceMinor(st.rdev), fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) });
    }
  };
  await walk(root);
  return out;
}

/** glibc's gnu_dev_major / gnu_dev_minor of a 64-bit dev_t. */
export function deviceMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}

export function deviceMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}

/**
 * A --device mapping resolved on the host: the node's type and numbers,
 * to be made at `pathInContainer`. InvalidArgument when the host path is
 * missing or not a device node.
 */
export async function resolveDevice(m: DeviceMapping): Promise<Device & { access: string }> {
  const st = await lstat(m.pathOnHost, { bigint: true }).catch((err: unknown) => {
    throw berthError('InvalidArgument', `error gathering device information while adding custom device "${m.pathOnHost}": ${(err as Error).message}`, err);
  });
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) throw berthError('InvalidArgument', `error gathering device information while adding custom device "${m.pathOnHost}": not a device node`);
  return { type, path: m.pathInContainer, major: deviceMajor(st.rdev), minor: deviceMinor(st.rdev), fileMode: Number(st.mode & 0o7777n), uid: 0, gid: 0, access: m.permissions };
}
