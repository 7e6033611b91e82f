import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  follow: { type: 'bool', short: 'f', doc: 'Follow log output' },
  tail: { type: 'string', short: 'n', default: 'all', doc: 'Number of lines to show from the end of the logs' },
  since: { type: 'string', doc: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")' },
  until: { type: 'string', doc: 'Show logs before a timestamp or relative time' },
  timestamps: { type: 'bool', short: 't', doc: 'Show timestamps' },
  details: { type: 'bool', doc: 'Show extra details provided to logs (ignored)' },
} as const;

/** docker's time arguments: RFC 3339 (date or date-time), unix seconds, or a duration ago (10m, 1h30m, 2s). */
export function parseTimeArg(s: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const dur = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
  if (dur && s) return (now - ((Number(dur[1] ?? 0) * 3600 + Number(dur[2] ?? 0) * 60 + Number(dur[3] ?? 0)) * 1000)) / 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw Object.assign(new Error(`invalid value for time: "${s}"`), { exit: 1 });
  return t / 1000;
}

export const command: Command = {
  usage: 'berth logs [OPTIONS] CONTAINER',
  summary: 'Fetch the logs of a container',
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`berth: "logs" requires exactly 1 argument.\nSee 'berth logs --help'.\n`);
      return 1;
    }
    const tail = flags.tail as string;
    if (tail !== 'all' && !/^-?\d+$/.test(tail)) {
      env.stderr.write(`berth: invalid value "${tail}" for flag --tail\n`);
      return 1;
    }
    const since = flags.since ? parseTimeArg(flags.since as string) : undefined;
    const until = flags.until ? parseTimeArg(flags.until as string) : undefined;
    return daemonCall(env.stderr, async () => {
      const stream = env.client().stream<{ stream: string; time: string; log: string }>('GET', `/containers/${encodeURIComponent(args[0])}/logs`, {
        query: { follow: !!flags.follow, tail: tail === 'all' ? undefined : tail, since, until },
      });
      for await (const e of stream) {
        const line = flags.timestamps ? `${e.time} ${e.log}` : e.log;
        const out = e.stream === 'stderr' ? env.stderr : env.stdout;
        if (!out.write(line)) await new Promise((r) => out.once('drain', r));
      }
      return 0;
    });
  },
};
