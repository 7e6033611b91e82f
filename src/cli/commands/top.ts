import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { table } from '../output.ts';

export const command: Command = {
  usage: 'berth top CONTAINER',
  summary: 'Display the running processes of a container',
  args: ['container', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {}, { stopAtPositional: true });
    if (args.length < 1) {
      env.stderr.write(`berth: "top" requires at least 1 argument.\n`);
      return 1;
    }
    return daemonCall(env, async () => {
      const t = await env.client().call<{ titles: string[]; processes: string[][] }>('GET', `/containers/${encodeURIComponent(args[0])}/top`);
      env.stdout.write(table(t.titles, t.processes));
      return 0;
    });
  },
};
