import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { confirm } from '../prompt.ts';

const specs = {
  force: { type: 'bool', short: 'f', doc: 'Do not prompt for confirmation' },
  filter: { type: 'list', doc: 'Provide filter values (e.g. "label=<key>=<value>")' },
} as const;

export const command: Command = {
  usage: 'berth container prune [OPTIONS]',
  summary: 'Remove all stopped containers',
  flags: specs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, specs);
    if (!flags.force && !(await confirm(env, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] '))) return 0;
    const labels = (flags.filter as string[]).filter((f) => f.startsWith('label=')).map((f) => f.slice('label='.length));
    return daemonCall(env, async () => {
      const r = await env.client().call<{ removed: string[] }>('POST', '/containers/prune', { query: { filters: labels.length ? JSON.stringify({ label: labels }) : undefined } });
      if (r.removed.length) env.stdout.write(`Deleted Containers:\n${r.removed.join('\n')}\n\n`);
      env.stdout.write('Total reclaimed space: 0B\n');
      return 0;
    });
  },
};
