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

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration ("1h30m", "1.5h", "300ms", "-2m"), or undefined when `s` is not one. */
function goDurationMs(s: string): number | undefined {
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) return undefined;
  let ms = 0;
  for (const part of m[2].matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(part[1]) * UNIT_MS[part[2]];
  return m[1] === '-' ? -ms : ms;
}

/**
 * docker's time arguments (GetTimestamp): a Go duration ago (10m, 1h30m,
 * 1.5h), unix seconds, or an RFC 3339 date or date-time; without a zone a
 * date is local time, as docker reads it.
 */
export function parseTimeArg(s: string, now = Date.now()): number {
  const invalid = () => Object.assign(new Error(`invalid value for time: "${s}"`), { exit: 1 });
  const dur = goDurationMs(s);
  if (dur !== undefined) return Math.floor((now - dur) / 1000);
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  if (!/^\d{4}-\d\d-\d\d(T\d\d(:\d\d(:\d\d(\.\d+)?)?)?)?(Z|z|[+-]\d\d:\d\d)?$/.test(s)) throw invalid();
  const [, date, time = '', zone = ''] = /^(\d{4}-\d\d-\d\d)(T[\d:.]+)?(.*)$/.exec(s)!;
  // Fill in the parts docker lets one leave out; with no zone JS reads a date-time as local time.
  const full = time.length === 3 ? `${time}:00:00` : time.length === 6 ? `${time}:00` : time || 'T00:00:00';
  const t = Date.parse(date + full + zone.toUpperCase());
  if (Number.isNaN(t)) throw invalid();
  return t / 1000;
}

export const command: Command = {
  usage: 'berth logs [OPTIONS] CONTAINER',
  summary: 'Fetch the logs of a container',
  flags: specs,
  args: ['container', 'none'],
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
    return daemonCall(env, async () => {
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
