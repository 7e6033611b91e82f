import type { CommandEnv } from '../command.ts';

/**
 * Shared by the network commands: docker prints daemon errors as
 * "Error response from daemon: ..." and exits 1; flag errors exit 125
 * (thrown to main.ts).
 */
export async function daemonCall<T>(env: CommandEnv, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const { kind, cause } = err as { kind?: string; cause?: { code?: string } };
    // Not reaching the daemon is the CLI's own error; the daemon refusing (a pre-defined network) is its answer.
    if (kind === 'Unavailable' || (kind === 'PermissionDenied' && cause?.code === 'EACCES')) throw err;
    env.stderr.write(`Error response from daemon: ${err instanceof Error ? err.message : String(err)}\n`);
    return { ok: false };
  }
}

/** `--filter k=v` flags as the API's filters JSON. */
export function filtersJson(list: string[]): string | undefined {
  if (!list.length) return undefined;
  const f: Record<string, string[]> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const k = eq < 0 ? item : item.slice(0, eq);
    (f[k] ??= []).push(eq < 0 ? '' : item.slice(eq + 1));
  }
  return JSON.stringify(f);
}

/** "k=v" list flags (labels, driver options) as a record. */
export function keyValues(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
