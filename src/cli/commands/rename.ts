import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

export const command: Command = {
  usage: 'berth rename CONTAINER NEW_NAME',
  summary: 'Rename a container',
  args: ['container', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 2) {
      env.stderr.write(`berth: "rename" requires exactly 2 arguments.\nSee 'berth rename --help'.\n`);
      return 1;
    }
    return daemonCall(env, async () => {
      await env.client().call('POST', `/containers/${encodeURIComponent(args[0])}/rename`, { query: { name: args[1] } });
      return 0;
    });
  },
};
