import type { PruneResult } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { humanSize } from '../output.ts';
import { confirm } from '../prompt.ts';

const specs = {
  all: { type: 'bool', short: 'a', doc: 'Remove all unused images not just dangling ones' },
  force: { type: 'bool', short: 'f', doc: 'Do not prompt for confirmation' },
  volumes: { type: 'bool', doc: 'Prune anonymous volumes' },
} as const;

/** docker system prune: stopped containers, unused networks, then images (and volumes when asked), in that order. */
export const command: Command = {
  usage: 'berth system prune [OPTIONS]',
  summary: 'Remove unused data',
  flags: specs,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`"berth system prune" accepts no arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    if (!flags.force) {
      const what = [
        '  - all stopped containers',
        '  - all networks not used by at least one container',
        ...(flags.volumes ? ['  - all anonymous volumes not used by at least one container'] : []),
        flags.all ? '  - all images without at least one container associated to them' : '  - all dangling images',
        '  - all build cache',
      ];
      if (!(await confirm(env, `WARNING! This will remove:\n${what.join('\n')}\n\nAre you sure you want to continue? [y/N] `))) return 0;
    }
    return daemonCall(env, async () => {
      const client = env.client();
      const containers = await client.call<{ removed: string[] }>('POST', '/containers/prune');
      if (containers.removed.length) env.stdout.write(`Deleted Containers:\n${containers.removed.join('\n')}\n\n`);
      const networks = await client.call<{ NetworksDeleted: string[] }>('POST', '/networks/prune');
      if (networks.NetworksDeleted?.length) env.stdout.write(`Deleted Networks:\n${networks.NetworksDeleted.join('\n')}\n\n`);
      if (flags.volumes) {
        const volumes = await client.call<{ removed: string[] }>('POST', '/volumes/prune', { query: { filters: '{}' } });
        if (volumes.removed.length) env.stdout.write(`Deleted Volumes:\n${volumes.removed.join('\n')}\n\n`);
      }
      const images = await client.call<PruneResult>('POST', '/images/prune', { query: { all: flags.all ? '1' : undefined } });
      if (images.ImagesDeleted.length) {
        env.stdout.write('Deleted Images:\n');
        for (const d of images.ImagesDeleted) env.stdout.write(d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`);
        env.stdout.write('\n');
      }
      const cache = await client.call<{ entries: number; bytes: number }>('POST', '/build/prune');
      if (cache.entries) env.stdout.write(`Deleted build cache objects: ${cache.entries}\n\n`);
      env.stdout.write(`Total reclaimed space: ${humanSize(images.SpaceReclaimed + cache.bytes)}\n`);
      return 0;
    });
  },
};
