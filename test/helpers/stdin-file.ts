import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** `file ARGS` with its stdin read from `path`, as a shell's `< path` gives it; stdout as bytes. */
export function runWithStdinFile(file: string, args: string[], path: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const fd = openSync(path, 'r');
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { env, stdio: [fd, 'pipe', 'pipe'], timeout: 120_000 });
    closeSync(fd);
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => out.push(d));
    p.stderr!.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr }));
  });
}
