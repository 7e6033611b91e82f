import type { ProgressEvent } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { progressPrinter } from '../progress.ts';

const specs = {
  quiet: { type: 'bool', short: 'q', doc: 'Suppress verbose output' },
} as const;

export const command: Command = {
  usage: 'berth push [OPTIONS] NAME[:TAG]',
  summary: 'Upload an image to a registry',
  flags: specs,
  args: ['image', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`"berth push" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      const printer = progressPrinter(env.stdout, { quiet: !!flags.quiet });
      let last = '';
      for await (const ev of env.client().stream<ProgressEvent>('POST', '/images/push', { query: { ref: args[0] } })) {
        if (!ev.id) last = ev.status;
        printer.onEvent(ev);
      }
      if (flags.quiet) env.stdout.write(`${last}\n`);
      return 0;
    });
  },
};
