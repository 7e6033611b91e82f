import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { table } from '../output.ts';
import { daemonCall, filtersJson } from './network-common.ts';
import { naturalOrder } from '../../core/order.ts';

const specs = {
  filter: { type: 'list', short: 'f', doc: 'Provide filter values (e.g. "driver=bridge")' },
  quiet: { type: 'bool', short: 'q', doc: 'Only display network IDs' },
  'no-trunc': { type: 'bool', doc: 'Do not truncate the output' },
} as const;

interface Net {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
}

export const command: Command = {
  usage: 'berth network ls [OPTIONS]',
  summary: 'List networks',
  flags: specs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, specs);
    const r = await daemonCall(env, () => env.client().call<Net[]>('GET', '/networks', { query: { filters: filtersJson(flags.filter as string[]) } }));
    if (!r.ok) return 1;
    const id = (n: Net) => (flags['no-trunc'] ? n.Id : n.Id.slice(0, 12));
    const nets = [...r.value].sort((a, b) => naturalOrder(a.Name, b.Name));
    if (flags.quiet) {
      env.stdout.write(nets.map((n) => `${id(n)}\n`).join(''));
      return 0;
    }
    env.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], nets.map((n) => [id(n), n.Name, n.Driver, n.Scope])));
    return 0;
  },
};
