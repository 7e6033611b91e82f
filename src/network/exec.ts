import { spawn } from 'node:child_process';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';

/**
 * Run a host tool (ip, iptables, unshare, umount) and collect its output.
 * Rejects with Unknown naming the command and its stderr on a non-zero exit.
 */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(ctx: Ctx, file: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: ctx.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {});
    child.on('error', (err) => reject(err.name === 'AbortError' ? berthError('Canceled', `${file}: canceled`, err) : berthError('Unknown', `${file}: ${err.message}`, err)));
    child.on('close', (code) => {
      const r = { code: code ?? 1, stdout, stderr };
      if (r.code !== 0 && !opts.allowFail) reject(berthError('Unknown', `${file} ${args.join(' ')}: ${stderr.trim() || `exit status ${r.code}`}`));
      else resolve(r);
    });
    child.stdin.end(opts.input);
  });
}
