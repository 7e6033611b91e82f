import { open, type FileHandle } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { syncfsAsync } from './sys.ts';

/**
 * Makes everything written so far on the file systems holding `dirs`
 * durable: one syncfs(2) per distinct file system (containerd's
 * `image_pull_with_sync_fs` does the same after an unpack). One call covers
 * every file written there, which costs far less than an fsync per file and
 * lets the kernel write the data in its own order. The descriptors are
 * opened once, at start: since Linux 5.8 syncfs reports a write-back error
 * only to descriptors opened before it happened, so one opened just for the
 * sync would miss the errors of write-back that ran behind an earlier
 * answer (images' write-behind). Each error is reported once, to the next
 * `sync`. Errors are those of node:fs (open) and of syncfs (EIO, ENOSPC,
 * EDQUOT), with `syscall` set.
 *
 *   const syncer = await FileSystemSyncer.open([contentRoot, snapshotRoot]);
 *   await syncer.sync();
 */
export class FileSystemSyncer {
  readonly #fds: FileHandle[];

  private constructor(fds: FileHandle[]) {
    this.#fds = fds;
  }

  static async open(dirs: string[]): Promise<FileSystemSyncer> {
    const seen = new Set<number>();
    const fds: FileHandle[] = [];
    try {
      for (const dir of dirs) {
        const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
        const { dev } = await fh.stat();
        if (seen.has(dev)) {
          await fh.close();
          continue;
        }
        seen.add(dev);
        fds.push(fh);
      }
    } catch (err) {
      for (const fh of fds) await fh.close().catch(() => {});
      throw err;
    }
    return new FileSystemSyncer(fds);
  }

  async sync(): Promise<void> {
    for (const fh of this.#fds) await syncfsAsync(fh.fd);
  }

  async close(): Promise<void> {
    for (const fh of this.#fds.splice(0)) await fh.close().catch(() => {});
  }
}
