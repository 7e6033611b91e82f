import { berthError } from '../../core/errors.ts';
import { criContainer } from './container-lookup.ts';
import type { UnaryHandler } from './types.ts';

/** What ExecSync keeps of each stream, as kubelet's own cap on probe and exec output (16 MiB). */
export const EXEC_SYNC_MAX_OUTPUT = 16 << 20;

/**
 * ExecSync: a command in a running container through the container
 * service's exec (the container's user, environment and security), its
 * output captured up to EXEC_SYNC_MAX_OUTPUT per stream. Past `timeout`
 * seconds (none when 0) the process is killed and the call answers
 * DEADLINE_EXCEEDED, which kubelet's probes read as a timeout, as from
 * containerd.
 */
export const execSync: UnaryHandler<{ container_id?: string; cmd?: string[]; timeout?: string }, object> = async (ctx, req, deps) => {
  const c = await criContainer(ctx, deps, req.container_id);
  if (!req.cmd?.length) throw berthError('InvalidArgument', 'ExecSync: cmd must not be empty');
  const timeoutSec = Number(req.timeout ?? 0);
  // setTimeout holds at most 2^31-1 ms; a longer timeout is no timeout in practice.
  const timeoutMs = timeoutSec > 0 ? Math.min(timeoutSec * 1000, 2 ** 31 - 1) : 2 ** 31 - 1;
  const r = await deps.containers.execSync(ctx, c.record.id, req.cmd, { timeoutMs, maxOutput: EXEC_SYNC_MAX_OUTPUT });
  if (r.timedOut) throw berthError('DeadlineExceeded', `ExecSync in container "${c.record.id}": timeout ${timeoutSec}s exceeded`);
  return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
};
