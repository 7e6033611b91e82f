import type { UnaryHandler } from './types.ts';

/**
 * ImageFsInfo: what the image store's snapshots take on their file system,
 * bytes and inodes, as containerd reports its snapshotter's root. Containers'
 * writable layers live in the same store, so no separate container file
 * system is reported.
 */
export const imageFsInfo: UnaryHandler<object, object> = async (ctx, _req, deps) => {
  const u = await deps.imageFsUsage(ctx);
  const timestamp = (BigInt(Date.now()) * 1_000_000n).toString();
  return {
    image_filesystems: [{ timestamp, fs_id: { mountpoint: u.mountpoint }, used_bytes: { value: String(u.usedBytes) }, inodes_used: { value: String(u.inodesUsed) } }],
    container_filesystems: [],
  };
};
