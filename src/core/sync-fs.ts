import { open } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { syncfsAsync } from './sys.ts';

/**
 * Make everything written so far on the file systems holding `dirs`
 * durable: one syncfs(2) per distinct file system (containerd's
 * `image_pull_with_sync_fs` does the same after an unpack). One call covers
 * every file written there, which costs far less than an fsync per file and
 * lets the kernel write the data in its own order. Errors are those of
 * node:fs (open) and of syncfs (EIO, ENOSPC, EDQUOT), with `syscall` set.
 *
 *   await syncFileSystems([contentRoot, snapshotRoot]);
 */
export async function syncFileSystems(dirs: string[]): Promise<void> {
  const seen = new Set<number>();
  for (const dir of dirs) {
    const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      const { dev } = await fh.stat();
      if (seen.has(dev)) continue;
      seen.add(dev);
      await syncfsAsync(fh.fd);
    } finally {
      await fh.close();
    }
  }
}
