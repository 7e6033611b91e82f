import { berthError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { daemonCall, keyValues } from './network-common.ts';

const specs = {
  driver: { type: 'string', short: 'd', default: 'bridge', doc: 'Driver to manage the Network (default "bridge")' },
  subnet: { type: 'list', doc: 'Subnet in CIDR format that represents a network segment' },
  gateway: { type: 'list', doc: 'IPv4 Gateway for the master subnet' },
  label: { type: 'list', doc: 'Set metadata on a network' },
  opt: { type: 'list', short: 'o', doc: 'Set driver specific options' },
  internal: { type: 'bool', doc: 'Restrict external access to the network' },
} as const;

export const command: Command = {
  usage: 'berth network create [OPTIONS] NETWORK',
  summary: 'Create a network',
  flags: specs,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) throw berthError('InvalidArgument', '"network create" requires exactly 1 argument.');
    const subnets = flags.subnet as string[];
    const gateways = flags.gateway as string[];
    if (gateways.length > subnets.length) throw berthError('InvalidArgument', 'every ip-range or gateway must have a corresponding subnet');
    const body = {
      Name: args[0],
      Driver: flags.driver,
      Internal: flags.internal === true,
      Labels: keyValues(flags.label as string[]),
      Options: keyValues(flags.opt as string[]),
      IPAM: { Config: subnets.map((s, i) => ({ Subnet: s, Gateway: gateways[i] })) },
    };
    const r = await daemonCall(env, () => env.client().call<{ Id: string }>('POST', '/networks/create', { body }));
    if (!r.ok) return 1;
    env.stdout.write(`${r.value.Id}\n`);
    return 0;
  },
};
