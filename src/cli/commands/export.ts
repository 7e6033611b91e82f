import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  output: { type: 'string', short: 'o', doc: 'Write to a file, instead of STDOUT' },
} as const;

/** docker export: a container's file system as a tar (its volumes and bind mounts left out). */
export const command: Command = {
  usage: 'berth export [OPTIONS] CONTAINER',
  summary: "Export a container's filesystem as a tar archive",
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`"berth export" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const output = flags.output as string | undefined;
    if (!output && env.stdout.isTTY) {
      env.stderr.write('cowardly refusing to save to a terminal. Use the -o flag or redirect\n');
      return 1;
    }
    return daemonCall(env, async () => {
      const body = await env.client().raw('GET', `/containers/${encodeURIComponent(args[0])}/export`);
      if (!output) {
        await pipeline(body, env.stdout, { end: false });
        return 0;
      }
      // Written beside the target and renamed, so a failed export leaves no partial file.
      const tmp = `${output}.berth-tmp-${process.pid}`;
      try {
        await pipeline(body, createWriteStream(tmp));
        await rename(tmp, output);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      return 0;
    });
  },
};
