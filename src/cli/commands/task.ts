import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { ctrTable, needArgs } from './ctr-common.ts';

/** `berth task ls|kill|ps`, ctr's `tasks` view: a running container's process. */
interface Task {
  id: string;
  pid: number;
  status: string;
}

const lsSpecs = { quiet: { type: 'bool', short: 'q', doc: 'Print only the task id' } } as const;

export const ls: Command = {
  usage: 'berth task ls [OPTIONS]',
  summary: 'List tasks',
  flags: lsSpecs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, lsSpecs);
    return daemonCall(env, async () => {
      const tasks = await env.client().call<Task[]>('GET', '/tasks');
      if (flags.quiet) env.stdout.write(tasks.map((t) => `${t.id}\n`).join(''));
      else env.stdout.write(ctrTable(['TASK', 'PID', 'STATUS'], tasks.map((t) => [t.id, String(t.pid), t.status.toUpperCase()])));
      return 0;
    });
  },
};

const killSpecs = { signal: { type: 'string', short: 's', default: 'SIGTERM', doc: 'Signal to send to the container' } } as const;

export const kill: Command = {
  usage: 'berth task kill [OPTIONS] CONTAINER',
  summary: 'Signal a container (default: SIGTERM)',
  flags: killSpecs,
  args: ['task', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, killSpecs);
    if (args.length !== 1) return needArgs(env.stderr, 'task kill', this.usage, 'exactly 1 argument');
    return daemonCall(env, async () => {
      await env.client().call('POST', `/containers/${encodeURIComponent(args[0])}/kill`, { query: { signal: flags.signal as string } });
      return 0;
    });
  },
};

export const ps: Command = {
  usage: 'berth task ps CONTAINER',
  summary: 'List processes of a container',
  flags: {},
  args: ['task', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 1) return needArgs(env.stderr, 'task ps', this.usage, 'exactly 1 argument');
    return daemonCall(env, async () => {
      const t = await env.client().call<{ titles: string[]; processes: string[][] }>('GET', `/containers/${encodeURIComponent(args[0])}/top`);
      const col = t.titles.indexOf('PID');
      env.stdout.write(ctrTable(['PID', 'INFO'], t.processes.map((p) => [p[col], '-'])));
      return 0;
    });
  },
};
