import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CommandEnv } from './command.ts';

/**
 * Where `save` and `export` put an archive: `-o FILE`, written beside it and
 * renamed so a failure leaves no partial file, or else stdout, which docker
 * refuses to be a terminal.
 */
export function refusesTerminal(env: CommandEnv, output: string | undefined): boolean {
  if (output || !env.stdout.isTTY) return false;
  env.stderr.write('cowardly refusing to save to a terminal. Use the -o flag or redirect\n');
  return true;
}

export async function writeArchive(env: CommandEnv, body: Readable, output: string | undefined): Promise<void> {
  if (!output) {
    await pipeline(body, env.stdout, { end: false });
    return;
  }
  const tmp = `${output}.berth-tmp-${process.pid}`;
  try {
    await pipeline(body, createWriteStream(tmp));
    await rename(tmp, output);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
