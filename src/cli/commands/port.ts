import type { PortMapping } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';
import { formatPortLine } from '../../core/ports.ts';
import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { daemonCall } from './network-common.ts';
import { byCodeUnit } from '../../core/order.ts';

export const command: Command = {
  usage: 'berth port CONTAINER [PRIVATE_PORT[/PROTO]]',
  summary: 'List port mappings or a specific mapping for the container',
  args: ['container', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length < 1 || args.length > 2) throw berthError('InvalidArgument', '"port" requires at least 1 and at most 2 arguments.');
    const r = await daemonCall(env, () =>
      env.client().call<PortMapping[]>('GET', `/containers/${encodeURIComponent(args[0])}/port`, { query: { port: args[1] } }),
    );
    if (!r.ok) return 1;
    const ports = [...r.value].sort((a, b) => a.containerPort - b.containerPort || byCodeUnit(a.protocol, b.protocol));
    for (const p of ports) {
      // with a port argument docker prints only the host side
      const line = formatPortLine(p);
      env.stdout.write(`${args[1] ? line.slice(line.indexOf('-> ') + 3) : line}\n`);
    }
    return 0;
  },
};
