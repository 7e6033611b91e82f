import type { ProgressEvent } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { progressPrinter } from '../progress.ts';

const specs = {
  quiet: { type: 'bool', short: 'q', doc: 'Suppress verbose output' },
  platform: { type: 'string', doc: 'Set platform if server is multi-platform capable' },
  'all-tags': { type: 'bool', short: 'a', doc: 'Download all tagged images in the repository (not supported)' },
} as const;

export const command: Command = {
  usage: 'berth pull [OPTIONS] NAME[:TAG|@DIGEST]',
  summary: 'Download an image from a registry',
  flags: specs,
  args: ['image', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`"berth pull" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    if (flags['all-tags']) {
      env.stderr.write('--all-tags is not supported: pull one tag at a time\n');
      return 125;
    }
    return daemonCall(env, async () => {
      const printer = progressPrinter(env.stdout, { quiet: !!flags.quiet });
      let name = '';
      for await (const ev of env.client().stream<ProgressEvent>('POST', '/images/pull', { query: { ref: args[0], platform: flags.platform as string | undefined } })) {
        if (!ev.id && !ev.status.includes(' ') && !ev.status.startsWith('Digest')) {
          name = ev.status;
          continue;
        }
        printer.onEvent(ev);
      }
      printer.finish();
      env.stdout.write(`${name}\n`);
      return 0;
    });
  },
};
