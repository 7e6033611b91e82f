import { readdir, readFile } from 'node:fs/promises';
import type { Ctx } from '../core/context.ts';

/**
 * CNI plugins that a daemon killed mid-run (kill -9, OOM, a crash) leaves
 * behind. A plugin is the daemon's child, so it runs on, reparented, and
 * may finish after the next daemon's start-up reconcile: an address
 * host-local allocates then, or a rule portmap adds, belongs to a container
 * whose endpoint was never recorded, and nothing would sweep it before the
 * start after that.
 *
 * Every plugin run carries `BERTH_CNI_OWNER=<cni cache dir>` in its
 * environment; a plugin hands its environment on to the plugins it
 * delegates to (the bridge plugin's IPAM) and the tools it runs, so they
 * carry it too. The cache dir is per root, so the daemons of other roots on
 * the host never match. At start-up, before the reconcile, the daemon kills
 * the plugins of its previous life and waits for them to be gone: what such
 * a plugin was making was asked for by a daemon that will never record it,
 * and whatever half of it exists is then swept by the reconcile, from
 * the cache (DEL) or by owner (allocations, rules, netns files).
 */
export const pluginOwnerVar = 'BERTH_CNI_OWNER';

interface PluginProcess {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a pid reused by another process apart. */
  startTime: string;
}

/** Processes whose environment marks them as plugin runs of `owner`, with their start time; not zombies. */
export async function findPluginProcesses(owner: string): Promise<PluginProcess[]> {
  const mark = `${pluginOwnerVar}=${owner}`;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid).map(Number);
  // Side by side: on the start path, and one read after another took ~20 ms for a hundred processes on a loaded host.
  const found = await Promise.all(
    pids.map(async (pid) => {
      const env = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
      if (!env.split('\0').includes(mark)) return undefined;
      const stat = await statOf(pid);
      return stat && stat.state !== 'Z' ? { pid, startTime: stat.startTime } : undefined;
    }),
  );
  return found.filter((p) => p !== undefined);
}

/**
 * Kill `owner`'s plugin processes and wait until they are gone (or
 * zombies), scanning again until none is left: a plugin may have started
 * a child between the scan and the kill. Returns how many were killed.
 * A process that outlives `timeoutMs` (stuck in the kernel) is logged and
 * left.
 */
export async function stopOrphanPlugins(ctx: Ctx, owner: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let killed = 0;
  for (;;) {
    const found = await findPluginProcesses(owner);
    if (!found.length) return killed;
    for (const p of found) {
      try {
        process.kill(p.pid, 'SIGKILL');
        killed++;
      } catch {
        // gone already
      }
    }
    for (const p of found) {
      while (await isRunning(p)) {
        if (Date.now() > deadline) {
          ctx.log.warn('a CNI plugin of the previous daemon does not exit after SIGKILL', { pid: p.pid });
          return killed;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }
}

async function isRunning(p: PluginProcess): Promise<boolean> {
  const stat = await statOf(p.pid);
  return stat !== undefined && stat.startTime === p.startTime && stat.state !== 'Z';
}

async function statOf(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
  // The command name (field 2) may hold spaces and parentheses: the fields after it start at the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (rest.length < 20) return undefined;
  return { state: rest[0], startTime: rest[19] };
}
