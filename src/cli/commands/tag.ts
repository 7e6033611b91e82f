import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

export const command: Command = {
  usage: 'berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  args: ['image', 'image', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 2) {
      env.stderr.write(`"berth tag" requires exactly 2 arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      await env.client().call('POST', '/images/tag', { body: { source: args[0], target: args[1] } });
      return 0;
    });
  },
};
