import { berthError } from '../core/errors.ts';
import { byCodeUnit } from '../core/order.ts';

/**
 * A docker-shaped flag parser: `-abc` bundles booleans, `-e K=V` and
 * `--env=K=V` both work, repeated list flags accumulate, and parsing stops at
 * the first positional for commands whose trailing words belong to the
 * container (`run IMAGE CMD...`).
 */
export type FlagType = 'bool' | 'string' | 'list' | 'number';

/** What a positional argument or a flag's value names, so completion can offer the daemon's names. */
export type ArgKind = 'container' | 'image' | 'network' | 'volume' | 'namespace' | 'content' | 'snapshot' | 'task' | 'none';

export interface FlagSpec {
  type: FlagType;
  short?: string;
  doc?: string;
  default?: string | boolean | number;
  /** What the flag's value names, for completion. */
  complete?: ArgKind;
}

export type FlagValues = Record<string, string | boolean | number | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  args: string[];
}

/**
 * A flag the command does not know, a value of the wrong type or a missing
 * value: docker prints the message and the command's usage and exits 125,
 * which `runCli` does for any error marked so.
 */
export function flagError(message: string): Error {
  return Object.assign(berthError('InvalidArgument', message), { flagError: true });
}

export function isFlagError(err: unknown): err is Error {
  return (err as { flagError?: unknown } | undefined)?.flagError === true;
}

export function parseFlags(argv: string[], specs: Record<string, FlagSpec>, opts: { stopAtPositional?: boolean } = {}): Parsed {
  const flags: FlagValues = {};
  for (const [name, s] of Object.entries(specs)) {
    if (s.default !== undefined) flags[name] = s.default;
    else if (s.type === 'list') flags[name] = [];
  }
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) if (s.short) byShort.set(s.short, name);
  const args: string[] = [];

  const set = (name: string, raw: string | undefined, next: () => string) => {
    const s = specs[name];
    if (s.type === 'bool') {
      if (raw === undefined) flags[name] = true;
      else if (raw === 'true' || raw === 'false') flags[name] = raw === 'true';
      else throw flagError(`invalid value "${raw}" for flag --${name}: expected true or false`);
      return;
    }
    const v = raw ?? next();
    if (s.type === 'list') (flags[name] as string[]).push(v);
    else if (s.type === 'number') {
      if (!/^-?\d+(\.\d+)?$/.test(v)) throw flagError(`invalid value "${v}" for flag --${name}: not a number`);
      flags[name] = Number(v);
    } else flags[name] = v;
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (flag: string) => () => {
      if (i + 1 >= argv.length) throw flagError(`flag needs an argument: ${flag}`);
      return argv[++i];
    };
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (!(name in specs)) throw flagError(`unknown flag: --${name}`);
      set(name, eq > 0 ? a.slice(eq + 1) : undefined, next(`--${name}`));
    } else if (a.startsWith('-') && a.length > 1 && a !== '-') {
      for (let j = 1; j < a.length; j++) {
        const name = byShort.get(a[j]);
        if (!name) throw flagError(`unknown shorthand flag: '${a[j]}' in ${a}`);
        if (specs[name].type === 'bool') {
          set(name, undefined, next(`-${a[j]}`));
        } else {
          const rest = a.slice(j + 1).replace(/^=/, '');
          set(name, rest.length ? rest : undefined, next(`-${a[j]}`));
          break;
        }
      }
    } else {
      args.push(a);
      if (opts.stopAtPositional) {
        args.push(...argv.slice(i + 1));
        break;
      }
    }
  }
  return { flags, args };
}

/**
 * docker's help of one command: usage, summary, aliases, then the flags
 * sorted by name with their type and default, descriptions in one column.
 */
export function helpText(usage: string, specs: Record<string, FlagSpec>, opts: { summary?: string; aliases?: string[] } = {}): string {
  const lines = [`Usage:  ${usage}`, ''];
  if (opts.summary) lines.push(opts.summary, '');
  if (opts.aliases?.length) lines.push('Aliases:', `  ${opts.aliases.join(', ')}`, '');
  const rows = Object.entries(specs)
    .filter(([, s]) => s.doc)
    .sort(([a], [b]) => byCodeUnit(a, b))
    .map(([name, s]) => {
      const type = s.type === 'bool' ? '' : s.type === 'number' ? ' int' : s.type === 'list' ? ' list' : ' string';
      return [`${s.short ? `-${s.short}, ` : '    '}--${name}${type}`, `${s.doc}${defaultText(s)}`];
    });
  if (rows.length) {
    const width = Math.max(...rows.map(([left]) => left.length));
    lines.push('Options:', ...rows.map(([left, doc]) => `  ${left.padEnd(width)}   ${doc}`), '');
  }
  return lines.join('\n');
}

/** cobra's " (default ...)": strings quoted, a false bool or an empty value not shown. */
function defaultText(s: FlagSpec): string {
  if (s.default === undefined || s.default === false || s.default === '') return '';
  return ` (default ${typeof s.default === 'string' ? JSON.stringify(s.default) : String(s.default)})`;
}
