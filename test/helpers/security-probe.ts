import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from './daemon.ts';

const execFileP = promisify(execFile);

/**
 * Compile test/fixtures/security-probe.c statically into `dir` and return
 * the binary's path, ready to put into an image layer.
 */
export async function buildSecurityProbe(dir: string): Promise<string> {
  const out = path.join(dir, 'security-probe');
  await execFileP('gcc', ['-static', '-O1', '-o', out, path.join(projectRoot, 'test/fixtures/security-probe.c')]);
  return out;
}

/** The capability masks of a /proc/PID/status text, by line name (CapEff...). */
export function capLines(status: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of status.matchAll(/^(Cap\w+):\s+([0-9a-f]+)$/gm)) out[m[1]] = m[2];
  return out;
}
