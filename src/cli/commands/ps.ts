import type { ContainerListItem } from '../../core/containers.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { goTime, humanAge, humanSize, table } from '../output.ts';
import { formatRows } from '../template.ts';

const specs = {
  all: { type: 'bool', short: 'a', doc: 'Show all containers (default shows just running)' },
  quiet: { type: 'bool', short: 'q', doc: 'Only display container IDs' },
  filter: { type: 'list', short: 'f', doc: 'Filter output based on conditions provided' },
  format: { type: 'string', doc: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" },
  'no-trunc': { type: 'bool', doc: "Don't truncate output" },
  last: { type: 'number', short: 'n', doc: 'Show n last created containers (includes all states)' },
  latest: { type: 'bool', short: 'l', doc: 'Show the latest created container (includes all states)' },
  size: { type: 'bool', short: 's', doc: 'Display total file sizes' },
} as const;

type Item = ContainerListItem;

export const command: Command = {
  usage: 'berth ps [OPTIONS]',
  summary: 'List containers',
  flags: specs,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`berth: "ps" accepts no arguments.\n`);
      return 1;
    }
    const filters: Record<string, string[]> = {};
    for (const f of flags.filter as string[]) {
      const eq = f.indexOf('=');
      if (eq < 0) {
        env.stderr.write(`berth: bad format of filter (expected name=value)\n`);
        return 1;
      }
      (filters[f.slice(0, eq)] ??= []).push(f.slice(eq + 1));
    }
    return daemonCall(env, async () => {
      const last = flags.latest ? 1 : (flags.last as number | undefined);
      const all = !!flags.all || last !== undefined;
      let items = await env.client().call<Array<Item & { SizeRw?: number; SizeRootFs?: number }>>('GET', '/containers/json', {
        query: { all, filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined, size: flags.size ? '1' : undefined },
      });
      if (last !== undefined && last > 0) items = items.slice(0, last);
      const noTrunc = !!flags['no-trunc'];
      if (flags.quiet) {
        env.stdout.write(items.map((c) => (noTrunc ? c.Id : c.Id.slice(0, 12)) + '\n').join(''));
        return 0;
      }
      const rows = items.map((c) => ({
        ID: noTrunc ? c.Id : c.Id.slice(0, 12),
        Image: c.Image,
        Command: noTrunc ? JSON.stringify(c.Command) : JSON.stringify(c.Command.length > 20 ? c.Command.slice(0, 19) + '…' : c.Command),
        CreatedAt: goTime(new Date(c.Created * 1000)),
        RunningFor: humanAge(c.Created * 1000),
        Created: humanAge(c.Created * 1000),
        Status: c.Status,
        State: c.State,
        Ports: ports(c.Ports),
        Names: c.Names.map((n) => n.replace(/^\//, '')).join(','),
        Labels: Object.entries(c.Labels).map(([k, v]) => `${k}=${v}`).join(','),
        Mounts: (c.Mounts ?? []).map((m) => m.Name ?? m.Source).join(','),
        // docker's "12B (virtual 2.15MB)": the writable layer, then with the image under it.
        Size: c.SizeRw === undefined ? '' : `${humanSize(c.SizeRw)} (virtual ${humanSize(c.SizeRootFs ?? c.SizeRw)})`,
      }));
      const format = flags.format as string | undefined;
      if (format && format !== 'table') {
        env.stdout.write(formatRows(format, rows, { ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', Created: 'CREATED', Status: 'STATUS', Ports: 'PORTS', Names: 'NAMES', State: 'STATE', Labels: 'LABELS', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Mounts: 'MOUNTS', Size: 'SIZE' }));
        return 0;
      }
      const headers = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(flags.size ? ['SIZE'] : [])];
      env.stdout.write(table(headers, rows.map((r) => [r.ID, r.Image, r.Command, r.Created, r.Status, r.Ports, r.Names, ...(flags.size ? [r.Size] : [])])));
      return 0;
    });
  },
};

function ports(ps: Item['Ports']): string {
  return ps
    .map((p) => (p.PublicPort ? `${p.IP ?? '0.0.0.0'}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`))
    .join(', ');
}
