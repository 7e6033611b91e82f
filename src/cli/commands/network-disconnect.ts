import { berthError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { daemonCall } from './network-common.ts';

const specs = {
  force: { type: 'bool', short: 'f', doc: 'Force the container to disconnect from a network' },
} as const;

export const command: Command = {
  usage: 'berth network disconnect [OPTIONS] NETWORK CONTAINER',
  summary: 'Disconnect a container from a network',
  flags: specs,
  args: ['network', 'container', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 2) throw berthError('InvalidArgument', '"network disconnect" requires exactly 2 arguments.');
    const r = await daemonCall(env, () => env.client().call('POST', `/networks/${encodeURIComponent(args[0])}/disconnect`, { body: { Container: args[1], Force: flags.force } }));
    return r.ok ? 0 : 1;
  },
};
