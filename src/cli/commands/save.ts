import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  output: { type: 'string', short: 'o', doc: 'Write to a file, instead of STDOUT' },
  format: { type: 'string', default: 'docker', doc: 'Archive format: docker (docker save) or oci (OCI image layout)' },
} as const;

export const command: Command = {
  usage: 'berth save [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1) {
      env.stderr.write(`"berth save" requires at least 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const output = flags.output as string | undefined;
    if (!output && env.stdout.isTTY) {
      env.stderr.write('cowardly refusing to save to a terminal. Use the -o flag or redirect\n');
      return 1;
    }
    return daemonCall(env, async () => {
      const body = await env.client().raw('GET', '/images/save', { query: { names: args, format: flags.format as string } });
      if (!output) {
        await pipeline(body, env.stdout, { end: false });
        return 0;
      }
      // Written beside the target and renamed, so a failed save leaves no partial file.
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
