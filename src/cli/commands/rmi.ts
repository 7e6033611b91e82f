import type { RemoveResult } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonError } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  force: { type: 'bool', short: 'f', doc: 'Force removal of the image' },
  'no-prune': { type: 'bool', doc: 'Do not delete untagged parents' },
} as const;

export const command: Command = {
  usage: 'berth rmi [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Remove one or more images',
  flags: specs,
  args: ['image'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1) {
      env.stderr.write(`"berth rmi" requires at least 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    let code = 0;
    for (const name of args) {
      try {
        const res = await env.client().call<RemoveResult[]>('DELETE', `/images/${name.split('/').map(encodeURIComponent).join('/')}`, { query: { force: flags.force ? '1' : undefined } });
        for (const r of res) env.stdout.write(r.Untagged ? `Untagged: ${r.Untagged}\n` : `Deleted: ${r.Deleted}\n`);
      } catch (err) {
        code = daemonError(env.stderr, err);
      }
    }
    return code;
  },
};
