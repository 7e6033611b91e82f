import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const KINDS = ['C', 'A', 'D'];

/** docker diff: files added (A), changed (C) and deleted (D) in a container's file system. */
export const command: Command = {
  usage: 'berth diff CONTAINER',
  summary: "Inspect changes to files or directories on a container's filesystem",
  args: ['container', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 1) {
      env.stderr.write(`"berth diff" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      const changes = await env.client().call<Array<{ Path: string; Kind: number }>>('GET', `/containers/${encodeURIComponent(args[0])}/changes`);
      env.stdout.write(changes.map((c) => `${KINDS[c.Kind] ?? '?'} ${c.Path}\n`).join(''));
      return 0;
    });
  },
};
