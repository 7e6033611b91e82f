import { berthError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { daemonCall } from './network-common.ts';

const specs = {
  alias: { type: 'list', doc: 'Add network-scoped alias for the container' },
  ip: { type: 'string', doc: 'IPv4 address (e.g., "172.30.100.104")' },
} as const;

export const command: Command = {
  usage: 'berth network connect [OPTIONS] NETWORK CONTAINER',
  summary: 'Connect a container to a network',
  flags: specs,
  args: ['network', 'container', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 2) throw berthError('InvalidArgument', '"network connect" requires exactly 2 arguments.');
    const body = { Container: args[1], EndpointConfig: { Aliases: flags.alias, IPAMConfig: { IPv4Address: flags.ip } } };
    const r = await daemonCall(env, () => env.client().call('POST', `/networks/${encodeURIComponent(args[0])}/connect`, { body }));
    return r.ok ? 0 : 1;
  },
};
