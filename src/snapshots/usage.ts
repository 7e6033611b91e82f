import { lstat, readdir } from 'node:fs/promises';
import type { Ctx } from '../core/context.ts';
import type { Usage } from './types.ts';

/**
 * Disk usage of a tree, like `du`: allocated blocks (st_blocks * 512) and
 * inodes, each inode counted once however many hard links it has. Symlinks
 * are counted, never followed.
 */
export async function diskUsage(ctx: Ctx, dir: string): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  let inodes = 0;
  const visit = async (path: string): Promise<void> => {
    ctx.signal.throwIfAborted();
    const st = await lstat(path, { bigint: true });
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      inodes++;
      size += Number(st.blocks) * 512;
    }
    if (st.isDirectory()) {
      const names = await readdir(path);
      // A few lstats in flight at once; unbounded fan-out would exhaust fds on wide trees.
      for (let i = 0; i < names.length; i += 32) {
        await Promise.all(names.slice(i, i + 32).map((n) => visit(`${path}/${n}`)));
      }
    }
  };
  await visit(dir);
  return { size, inodes };
}
