import { berthError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { daemonCall } from './network-common.ts';

const specs = {
  force: { type: 'bool', short: 'f', doc: 'Do not error if the network does not exist' },
} as const;

export const command: Command = {
  usage: 'berth network rm NETWORK [NETWORK...]',
  summary: 'Remove one or more networks',
  flags: specs,
  args: ['network'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length === 0) throw berthError('InvalidArgument', '"network rm" requires at least 1 argument.');
    let failed = false;
    for (const ref of args) {
      const r = await daemonCall(env, async () => {
        try {
          await env.client().call('DELETE', `/networks/${encodeURIComponent(ref)}`);
        } catch (err) {
          if (flags.force && (err as { kind?: string }).kind === 'NotFound') return;
          throw err;
        }
      });
      if (r.ok) env.stdout.write(`${ref}\n`);
      else failed = true;
    }
    return failed ? 1 : 0;
  },
};
