import net from 'node:net';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import { childStatusAsync, spawnPiped } from '../core/sys.ts';

/**
 * Run a host tool (ip, iptables, iptables-restore, a CNI plugin) and collect
 * its output. Children are started with posix_spawn (core/sys.ts), not
 * Node's spawn: these run on every container start and stop, and Node's
 * spawn held the event loop for 2-20 ms per child here (it forks the
 * daemon's address space and waits for the exec). The spawn and the reaping
 * both run on worker threads, as each waits on the child.
 */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Rejects with Unknown naming the command and its stderr on a non-zero exit (unless `allowFail`). */
export async function run(ctx: Ctx, file: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): Promise<ExecResult> {
  const r = await spawnCollect(file, args, { signal: ctx.signal, input: opts.input }).catch((err) => {
    throw berthError((err as Error).name === 'AbortError' ? 'Canceled' : 'Unknown', `${file}: ${(err as Error).message}`, err);
  });
  if (r.code !== 0 && !opts.allowFail) throw berthError('Unknown', `${file} ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
  return r;
}

const searchPath = (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean);
/** Where a name was last found in PATH, tried first next time. */
const found = new Map<string, string>();

/**
 * Start `file` (a path, or a name looked up in PATH), write `input` to its
 * stdin, and resolve with its exit code and output once it has exited.
 * `env` is added to the daemon's environment. When `signal` aborts, the
 * child is killed with SIGKILL and the promise rejects with an AbortError
 * carrying the signal's reason; unless the child had closed its output and
 * exited by itself already (it is reaped a little after its pipes close):
 * then its result stands, as what it did is done.
 */
export async function spawnCollect(file: string, args: string[], opts: { env?: Record<string, string>; input?: string; signal?: AbortSignal } = {}): Promise<ExecResult> {
  if (opts.signal?.aborted) throw abortError(opts.signal);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, opts.env);
  let child: Awaited<ReturnType<typeof spawnPiped>> | undefined;
  let lastErr: unknown;
  const last = found.get(file);
  const candidates = file.includes('/') ? [file] : [...(last ? [last] : []), ...searchPath.map((d) => `${d}/${file}`).filter((p) => p !== last)];
  for (const bin of candidates) {
    try {
      child = await spawnPiped(bin, args, env);
      if (!file.includes('/')) found.set(file, bin);
      break;
    } catch (err) {
      lastErr = err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') break;
    }
  }
  if (!child) throw lastErr;
  const started = child;
  return new Promise((resolve, reject) => {
    const child = started;
    const { pid } = child;
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let open = 2;
    let aborted: Error | undefined;
    const sockets: net.Socket[] = [];
    const onAbort = () => {
      aborted = abortError(opts.signal!);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      // Both pipes closed: the output is whole and the child has most likely exited by itself, unreaped
      // (a zombie, which the kill leaves as it was). The reap tells: only a child the kill ended was aborted.
      // An iptables-restore that committed must not be reported as failed, or its caller would leave the rules.
      if (open === 0) return;
      // A grandchild may hold the pipes open: stop reading, reject now, reap in the background.
      for (const s of sockets) s.destroy();
      reject(aborted);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      if (--open > 0) return;
      // The pipes close as the child exits: it is reaped within a few polls. Not at once: a child reaped
      // while its exit is still under way (the bridge plugin's Go threads) has the kernel spin flushing its
      // /proc entries (wait4 -> release_task -> proc_invalidate_siblings_dcache), 3-10 ms of berthd's
      // event loop per bridge plugin run here, where a millisecond later the same reap costs microseconds.
      let delay = 1;
      const reap = () => {
        childStatusAsync(pid).then(
          (code) => {
            if (code === undefined) {
              delay = Math.min(delay + 1, 20);
              setTimeout(reap, delay);
              return;
            }
            opts.signal?.removeEventListener('abort', onAbort);
            if (aborted && code === 128 + SIGKILL) reject(aborted);
            else resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
          },
          (err: unknown) => {
            opts.signal?.removeEventListener('abort', onAbort);
            reject(err);
          },
        );
      };
      setTimeout(reap, delay);
    };
    const reader = (fd: number, into: Buffer[]) => {
      const s = new net.Socket({ fd, readable: true, writable: false });
      sockets.push(s);
      s.on('data', (d: Buffer) => into.push(d));
      s.on('error', () => {});
      s.on('close', finish);
    };
    reader(child.stdout, out);
    reader(child.stderr, errOut);
    const stdin = new net.Socket({ fd: child.stdin, readable: false, writable: true });
    sockets.push(stdin);
    stdin.on('error', () => {});
    stdin.end(opts.input ?? '');
  });
}

const SIGKILL = 9;

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('the operation was aborted', { cause: signal.reason }), { name: 'AbortError' });
}
