import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';

export const command: Command = {
  usage: 'berth version',
  summary: 'Show the berth version information',
  async run(argv, env) {
    parseFlags(argv, {});
    env.stdout.write(`Client:\n Version:\t0.1.0\n Node:\t\t${process.version}\n\n`);
    const v = await env.client().call<{ version: string; apiVersion: string; node: string }>('GET', '/version');
    env.stdout.write(`Server:\n Version:\t${v.version}\n API version:\t${v.apiVersion}\n Node:\t\t${v.node}\n`);
    return 0;
  },
};
