import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { renderTemplate } from '../template.ts';
import { parseTimeArg } from './logs.ts';
import { byCodeUnit } from '../../core/order.ts';

const specs = {
  filter: { type: 'list', short: 'f', doc: 'Filter output based on conditions provided' },
  format: { type: 'string', doc: 'Format output using a custom template' },
  since: { type: 'string', doc: 'Show all events created since timestamp' },
  until: { type: 'string', doc: 'Stream events until this timestamp' },
} as const;

interface Event {
  type: string;
  action: string;
  id: string;
  attributes: Record<string, string>;
  timeNano: string;
}

export const command: Command = {
  usage: 'berth events [OPTIONS]',
  summary: 'Get real time events from the server',
  flags: specs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, specs);
    const filters: Record<string, string[]> = {};
    for (const f of flags.filter as string[]) {
      const eq = f.indexOf('=');
      if (eq < 0) {
        env.stderr.write('berth: bad format of filter (expected name=value)\n');
        return 1;
      }
      (filters[f.slice(0, eq)] ??= []).push(f.slice(eq + 1));
    }
    return daemonCall(env, async () => {
      const query = {
        filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined,
        since: flags.since ? parseTimeArg(flags.since as string) : undefined,
        until: flags.until ? parseTimeArg(flags.until as string) : undefined,
      };
      for await (const e of env.client().stream<Event>('GET', '/events', { query })) {
        const format = flags.format as string | undefined;
        if (format === 'json') env.stdout.write(JSON.stringify(e) + '\n');
        else if (format) env.stdout.write(renderTemplate(format, { Type: e.type, Action: e.action, ID: e.id, Actor: { ID: e.id, Attributes: e.attributes }, TimeNano: e.timeNano }) + '\n');
        else {
          const t = new Date(Number(BigInt(e.timeNano) / 1_000_000n)).toISOString().replace('Z', '');
          const attrs = Object.entries(e.attributes).sort(([a], [b]) => byCodeUnit(a, b)).map(([k, v]) => `${k}=${v}`).join(', ');
          env.stdout.write(`${t}${e.timeNano.slice(-6)}+00:00 ${e.type} ${e.action} ${e.id}${attrs ? ` (${attrs})` : ''}\n`);
        }
      }
      return 0;
    });
  },
};
