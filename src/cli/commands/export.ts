import type { Command } from '../command.ts';
import { refusesTerminal, writeArchive } from '../download.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  output: { type: 'string', short: 'o', doc: 'Write to a file, instead of STDOUT' },
} as const;

/** docker export: a container's file system as a tar (its volumes and bind mounts left out). */
export const command: Command = {
  usage: 'berth export [OPTIONS] CONTAINER',
  summary: "Export a container's filesystem as a tar archive",
  flags: specs,
  args: ['container', 'none'],
  local: true,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`"berth export" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const output = flags.output as string | undefined;
    if (refusesTerminal(env, output)) return 1;
    return daemonCall(env, async () => {
      const body = await env.client().raw('GET', `/containers/${encodeURIComponent(args[0])}/export`);
      await writeArchive(env, body, output);
      return 0;
    });
  },
};
