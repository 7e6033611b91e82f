import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { humanSize } from '../output.ts';
import { confirm } from '../prompt.ts';

const specs = {
  all: { type: 'bool', short: 'a', doc: 'Remove all unused build cache (berth keeps no other kind)' },
  force: { type: 'bool', short: 'f', doc: 'Do not prompt for confirmation' },
} as const;

/** docker builder prune: every cached build step, and the space only they held. */
export const command: Command = {
  usage: 'berth builder prune [OPTIONS]',
  summary: 'Remove build cache',
  flags: specs,
  args: ['none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`"berth builder prune" accepts no arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    if (!flags.force && !(await confirm(env, 'WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] '))) return 0;
    return daemonCall(env, async () => {
      const r = await env.client().call<{ entries: number; bytes: number }>('POST', '/build/prune');
      env.stdout.write(`Deleted build cache objects: ${r.entries}\nTotal:\t${humanSize(r.bytes)}\n`);
      return 0;
    });
  },
};
