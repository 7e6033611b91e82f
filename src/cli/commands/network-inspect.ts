import { berthError } from '../../core/errors.ts';
import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { renderTemplate } from '../template.ts';
import { daemonCall } from './network-common.ts';

const specs = {
  format: { type: 'string', short: 'f', doc: 'Format the output: "json" or a {{.Field}} path' },
} as const;

export const command: Command = {
  usage: 'berth network inspect [OPTIONS] NETWORK [NETWORK...]',
  summary: 'Display detailed information on one or more networks',
  flags: specs,
  args: ['network'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length === 0) throw berthError('InvalidArgument', '"network inspect" requires at least 1 argument.');
    const out: unknown[] = [];
    let failed = false;
    for (const ref of args) {
      const r = await daemonCall(env, () => env.client().call('GET', `/networks/${encodeURIComponent(ref)}`));
      if (r.ok) out.push(r.value);
      else failed = true;
    }
    const format = flags.format as string | undefined;
    if (format && format !== 'json') {
      for (const v of out) env.stdout.write(`${renderTemplate(format, v as Record<string, unknown>)}\n`);
    } else if (format === 'json') {
      for (const v of out) env.stdout.write(`${JSON.stringify(v)}\n`);
    } else {
      env.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
    }
    return failed ? 1 : 0;
  },
};
