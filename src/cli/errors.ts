/**
 * docker's CLI reports a daemon error as "Error response from daemon: ..."
 * and exits 1; a usage error exits 125 (main.ts). Commands run their
 * daemon calls through `daemonCall` to get the former.
 */
export function daemonError(stderr: NodeJS.WritableStream, err: unknown): number {
  const msg = err instanceof Error ? err.message : String(err);
  const kind = (err as { kind?: string })?.kind;
  stderr.write(kind === 'Unavailable' && /cannot connect/.test(msg) ? `${msg}\n` : `Error response from daemon: ${msg}\n`);
  return 1;
}

/** Runs `fn`, reporting a daemon error on the command's stderr (taken only then: building it costs a command that prints nothing). */
export async function daemonCall(out: { readonly stderr: NodeJS.WritableStream }, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { exit?: number })?.exit !== undefined) throw err;
    return daemonError(out.stderr, err);
  }
}
