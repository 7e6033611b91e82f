import type { Command, CommandEnv } from './command.ts';
import { parseFlags, type FlagSpec, type FlagValues } from './flags.ts';

/**
 * Commands that apply one daemon call to each named container and print the
 * name back (stop, kill, restart, rm, pause, unpause), with docker's
 * behaviour: every argument is tried, errors are printed as they happen,
 * and the exit code is 1 if any failed.
 */
export function eachContainer(opts: {
  name: string;
  usage: string;
  summary: string;
  specs: Record<string, FlagSpec>;
  /** Checks the flags once, before any container is touched: a bad value is the user's error (125). */
  validate?: (flags: FlagValues) => void;
  call: (env: CommandEnv, id: string, flags: FlagValues) => Promise<unknown>;
  print?: (env: CommandEnv, id: string, result: unknown) => void;
}): Command {
  return {
    usage: opts.usage,
    summary: opts.summary,
    flags: opts.specs,
    args: ['container'],
    async run(argv, env) {
      const { flags, args } = parseFlags(argv, opts.specs);
      if (args.length < 1) {
        env.stderr.write(`berth: "${opts.name}" requires at least 1 argument.\nSee 'berth ${opts.name} --help'.\n\nUsage:  ${opts.usage}\n`);
        return 1;
      }
      try {
        opts.validate?.(flags);
      } catch (err) {
        env.stderr.write(`berth: ${(err as Error).message}\nSee 'berth ${opts.name} --help'.\n`);
        return 125;
      }
      let failed = false;
      for (const id of args) {
        try {
          const result = await opts.call(env, encodeURIComponent(id), flags);
          if (opts.print) opts.print(env, id, result);
          else env.stdout.write(`${id}\n`);
        } catch (err) {
          if ((err as { kind?: string }).kind === 'Unavailable') {
            env.stderr.write(`${(err as Error).message}\n`);
            return 1;
          }
          env.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
          failed = true;
        }
      }
      return failed ? 1 : 0;
    },
  };
}
