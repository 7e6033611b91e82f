import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { ctrTable, labelList } from './ctr-common.ts';

/** `berth lease ls`, ctr's `leases` view: what holds blobs and snapshots from GC in a namespace. */
const lsSpecs = { quiet: { type: 'bool', short: 'q', doc: 'Print only the lease id' } } as const;

export const ls: Command = {
  usage: 'berth lease ls [OPTIONS]',
  summary: 'List all active leases',
  flags: lsSpecs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, lsSpecs);
    return daemonCall(env, async () => {
      const leases = await env.client().call<Array<{ id: string; createdAt: string; labels: Record<string, string> }>>('GET', '/leases');
      if (flags.quiet) env.stdout.write(leases.map((l) => `${l.id}\n`).join(''));
      else env.stdout.write(ctrTable(['ID', 'CREATED AT', 'LABELS'], leases.map((l) => [l.id, l.createdAt.replace(/\.\d+Z$/, 'Z'), labelList(l.labels) || '-'])));
      return 0;
    });
  },
};
