import type { Command } from '../command.ts';

export const command: Command = {
  usage: 'berth network COMMAND',
  summary: 'Manage networks',
  async run(_argv, env) {
    env.stdout.write(`Usage:  berth network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks
`);
    return 0;
  },
};
