import { spawn } from 'node:child_process';

/** What one command did: exit code, output and wall time from spawn to exit. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
  /** Cleanup commands still run after an interrupt. */
  duringCleanup?: boolean;
}

/** Set on SIGINT/SIGTERM: measurement commands refuse to start, cleanup ones still run. */
export const interrupted = { value: false };

/**
 * Runs a command and times it from just before spawn to the process's exit.
 * Output is collected, but the clock stops at exit, not when the pipes
 * close: a detached daemon that keeps a copy of stdout open must not
 * stretch the figure (and must not hang the harness).
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (interrupted.value && !opts.duringCleanup) return reject(new Error('interrupted'));
    const env = opts.env ? { ...process.env, ...opts.env } : process.env;
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.stdin.on('error', () => {});
    p.stdin.end(opts.input);
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          stderr += `\n[bench] ${cmd} timed out after ${opts.timeoutMs} ms`;
          p.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    p.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.on('exit', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      const done = () => resolve({ code: code ?? 128 + (signal ? 9 : 0), stdout, stderr, ms });
      if (p.stdout.closed && p.stderr.closed) return done();
      const grace = setTimeout(() => {
        p.stdout.destroy();
        p.stderr.destroy();
        done();
      }, 2000);
      p.on('close', () => {
        clearTimeout(grace);
        done();
      });
    });
  });
}

/** Like run(), but a non-zero exit is an error that carries the command's stderr. */
export async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, { timeoutMs: 600_000, ...opts });
  if (r.code !== 0) {
    const out = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}\n${out}`);
  }
  return r;
}

/** Whether a program is on PATH (or is an existing path). */
export async function have(cmd: string): Promise<boolean> {
  const r = await run('sh', ['-c', 'command -v "$1"', 'sh', cmd]).catch(() => undefined);
  return r?.code === 0;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
