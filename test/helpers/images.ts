import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestDaemon } from './daemon.ts';

const execFileP = promisify(execFile);

/**
 * Unmount (lazily, deepest first) whatever is mounted under the daemon's temp
 * dir, so a test never leaves a mount behind even if the daemon did.
 */
export async function cleanupDaemonMounts(d: TestDaemon | undefined): Promise<void> {
  if (!d) return;
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const targets = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((t): t is string => !!t && t.startsWith(d.dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) await execFileP('umount', ['-l', t]).catch(() => {});
}
