import type { Command } from '../command.ts';
import { refusesTerminal, writeArchive } from '../download.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  output: { type: 'string', short: 'o', doc: 'Write to a file, instead of STDOUT' },
  format: { type: 'string', default: 'docker', doc: 'Archive format: docker (docker save) or oci (OCI image layout)' },
} as const;

export const command: Command = {
  usage: 'berth save [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  flags: specs,
  args: ['image'],
  local: true,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1) {
      env.stderr.write(`"berth save" requires at least 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const output = flags.output as string | undefined;
    if (refusesTerminal(env, output)) return 1;
    return daemonCall(env, async () => {
      const body = await env.client().raw('GET', '/images/save', { query: { names: args, format: flags.format as string } });
      await writeArchive(env, body, output);
      return 0;
    });
  },
};
