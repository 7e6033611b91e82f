import type { Command } from '../command.ts';
import { parseDetachKeys, runContainer, runOptionsEnv } from '../container-run.ts';
import { daemonError } from '../errors.ts';
import { isFlagError, parseFlags } from '../flags.ts';
import { RUN_FLAGS, toContainerConfig } from '../run-options.ts';

const specs = {
  ...RUN_FLAGS,
  'sig-proxy': { type: 'bool', default: true, doc: 'Proxy received signals to the process' },
  'detach-keys': { type: 'string', doc: 'Override the key sequence for detaching a container' },
} as const;

export const command: Command = {
  usage: 'berth run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  summary: 'Create and run a new container from an image',
  flags: specs,
  args: ['image', 'none'],
  async run(argv, env) {
    let opts;
    try {
      const parsed = parseFlags(argv, specs, { stopAtPositional: true });
      if (parsed.args.length < 1) {
        env.stderr.write(`berth: "run" requires at least 1 argument.\nSee 'berth run --help'.\n\nUsage:  ${this.usage}\n`);
        return 125;
      }
      opts = toContainerConfig(parsed, await runOptionsEnv(env, parsed), 'run');
      const detachKeys = parseDetachKeys(parsed.flags['detach-keys'] as string | undefined);
      return await runContainer(env, opts, { sigProxy: parsed.flags['sig-proxy'] !== false, detachKeys });
    } catch (err) {
      if (isFlagError(err)) throw err;
      if ((err as { kind?: string }).kind === 'InvalidArgument' || (err as { exit?: number }).exit) {
        env.stderr.write(`berth: ${(err as Error).message}\nSee 'berth run --help'.\n`);
        return 125;
      }
      daemonError(env.stderr, err);
      return 125;
    }
  },
};
