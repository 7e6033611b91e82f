import type { Command } from '../command.ts';
import { parseDetachKeys, runAttached } from '../container-run.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  attach: { type: 'bool', short: 'a', doc: 'Attach STDOUT/STDERR and forward signals' },
  interactive: { type: 'bool', short: 'i', doc: "Attach container's STDIN" },
  'detach-keys': { type: 'string', doc: 'Override the key sequence for detaching a container' },
} as const;

export const command: Command = {
  usage: 'berth start [OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Start one or more stopped containers',
  flags: specs,
  args: ['container'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1) {
      env.stderr.write(`berth: "start" requires at least 1 argument.\nSee 'berth start --help'.\n`);
      return 1;
    }
    const client = env.client();
    if (flags.attach || flags.interactive) {
      if (args.length > 1) {
        env.stderr.write('berth: you cannot start and attach multiple containers at once\n');
        return 1;
      }
      const c = await client.call<{ Id: string; Config: { Tty: boolean; OpenStdin: boolean }; HostConfig: { AutoRemove: boolean } }>('GET', `/containers/${encodeURIComponent(args[0])}/json`).catch((err) => err as Error);
      if (c instanceof Error) {
        env.stderr.write(`Error response from daemon: ${c.message}\n`);
        return 1;
      }
      return runAttached(env, c.Id, { tty: c.Config.Tty, openStdin: !!flags.interactive && c.Config.OpenStdin, autoRemove: c.HostConfig.AutoRemove }, { start: true, sigProxy: true, detachKeys: parseDetachKeys(flags['detach-keys'] as string | undefined) });
    }
    let failed = false;
    for (const name of args) {
      try {
        await client.call('POST', `/containers/${encodeURIComponent(name)}/start`);
        env.stdout.write(`${name}\n`);
      } catch (err) {
        env.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
        failed = true;
      }
    }
    if (failed) env.stderr.write('Error: failed to start containers: ' + args.join(', ') + '\n');
    return failed ? 1 : 0;
  },
};
