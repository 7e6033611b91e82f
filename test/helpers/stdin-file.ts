import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';

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

/**
 * The input of the stdin tests, written under `dir`: a few MiB of random
 * bytes that are not a multiple of any copy buffer (the input ends with a
 * chunk of a few bytes), an empty file, and the input's sha256.
 */
export function writeStdinInputs(dir: string): { data: Buffer; file: string; empty: string; want: string } {
  const data = randomBytes(3 * 1024 * 1024 + 7);
  const file = path.join(dir, 'stdin-input');
  writeFileSync(file, data);
  const empty = path.join(dir, 'stdin-empty');
  writeFileSync(empty, '');
  return { data, file, empty, want: createHash('sha256').update(data).digest('hex') };
}
