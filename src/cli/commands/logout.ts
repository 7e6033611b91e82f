import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

export const command: Command = {
  usage: 'berth logout [SERVER]',
  summary: 'Log out from a registry (default docker.io)',
  local: true,
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length > 1) {
      env.stderr.write(`"berth logout" requires at most 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const server = args[0] ?? 'docker.io';
    return daemonCall(env, async () => {
      const r = await env.client().call<{ Removed: boolean }>('POST', '/auth/logout', { body: { serveraddress: server } });
      env.stdout.write(r.Removed ? `Removing login credentials for ${server}\n` : `Not logged in to ${server}\n`);
      return 0;
    });
  },
};
