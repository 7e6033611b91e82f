import type { Command } from '../command.ts';
import { createContainer, runOptionsEnv } from '../container-run.ts';
import { isFlagError, parseFlags } from '../flags.ts';
import { CREATE_FLAGS, toContainerConfig } from '../run-options.ts';

export const command: Command = {
  usage: 'berth create [OPTIONS] IMAGE [COMMAND] [ARG...]',
  summary: 'Create a new container',
  flags: CREATE_FLAGS,
  args: ['image', 'none'],
  async run(argv, env) {
    try {
      const parsed = parseFlags(argv, CREATE_FLAGS, { stopAtPositional: true });
      if (parsed.args.length < 1) {
        env.stderr.write(`berth: "create" requires at least 1 argument.\nSee 'berth create --help'.\n\nUsage:  ${this.usage}\n`);
        return 125;
      }
      const opts = toContainerConfig(parsed, await runOptionsEnv(env, parsed), 'create');
      env.stdout.write(`${await createContainer(env, opts)}\n`);
      return 0;
    } catch (err) {
      if (isFlagError(err)) throw err;
      const kind = (err as { kind?: string }).kind;
      env.stderr.write(`berth: ${kind === 'InvalidArgument' || kind === 'Unavailable' ? '' : 'Error response from daemon: '}${(err as Error).message}\n`);
      return 125;
    }
  },
};
