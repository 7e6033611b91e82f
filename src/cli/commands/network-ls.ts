import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { goTime, table } from '../output.ts';
import { formatRows } from '../template.ts';
import { daemonCall, filtersJson } from './network-common.ts';
import { naturalOrder } from '../../core/order.ts';

const specs = {
  filter: { type: 'list', short: 'f', doc: 'Provide filter values (e.g. "driver=bridge")' },
  quiet: { type: 'bool', short: 'q', doc: 'Only display network IDs' },
  'no-trunc': { type: 'bool', doc: 'Do not truncate the output' },
  format: { type: 'string', doc: 'Format output using a custom template: json, table, or a Go template' },
} as const;

interface Net {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Created: string;
  EnableIPv6: boolean;
  Internal: boolean;
  Labels: Record<string, string> | null;
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
    const format = flags.format as string | undefined;
    if (format && format !== 'table') {
      // docker's fields for network ls templates.
      const rows = nets.map((n) => ({
        ID: id(n),
        Name: n.Name,
        Driver: n.Driver,
        Scope: n.Scope,
        IPv6: String(n.EnableIPv6),
        Internal: String(n.Internal),
        Labels: Object.entries(n.Labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        CreatedAt: goTime(new Date(n.Created)),
      }));
      env.stdout.write(formatRows(format, rows, { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED AT' }));
      return 0;
    }
    env.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], nets.map((n) => [id(n), n.Name, n.Driver, n.Scope])));
    return 0;
  },
};
