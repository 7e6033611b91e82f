import type { PruneResult } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { humanSize } from '../output.ts';
import { confirm } from '../prompt.ts';

const specs = {
  all: { type: 'bool', short: 'a', doc: 'Remove all unused images, not just dangling ones' },
  force: { type: 'bool', short: 'f', doc: 'Do not prompt for confirmation' },
} as const;

export const command: Command = {
  usage: 'berth image prune [OPTIONS]',
  summary: 'Remove unused images',
  flags: specs,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`"berth image prune" accepts no arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    if (!flags.force) {
      const warning = flags.all
        ? 'WARNING! This will remove all images without at least one container associated to them.'
        : 'WARNING! This will remove all dangling images.';
      if (!(await confirm(env, `${warning}\nAre you sure you want to continue? [y/N] `))) return 0;
    }
    return daemonCall(env, async () => {
      const r = await env.client().call<PruneResult>('POST', '/images/prune', { query: { all: flags.all ? '1' : undefined } });
      if (r.ImagesDeleted.length) {
        env.stdout.write('Deleted Images:\n');
        for (const d of r.ImagesDeleted) env.stdout.write(d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`);
        env.stdout.write('\n');
      }
      env.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
      return 0;
    });
  },
};
