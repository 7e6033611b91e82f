import { berthError } from '../core/errors.ts';

/**
 * A docker-shaped flag parser: `-abc` bundles booleans, `-e K=V` and
 * `--env=K=V` both work, repeated list flags accumulate, and parsing stops at
 * the first positional for commands whose trailing words belong to the
 * container (`run IMAGE CMD...`).
 */
export type FlagType = 'bool' | 'string' | 'list' | 'number';

export interface FlagSpec {
  type: FlagType;
  short?: string;
  doc?: string;
  default?: string | boolean | number;
}

export type FlagValues = Record<string, string | boolean | number | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  args: string[];
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
      else throw berthError('InvalidArgument', `invalid value "${raw}" for flag --${name}: expected true or false`);
      return;
    }
    const v = raw ?? next();
    if (s.type === 'list') (flags[name] as string[]).push(v);
    else if (s.type === 'number') {
      if (!/^-?\d+(\.\d+)?$/.test(v)) throw berthError('InvalidArgument', `invalid value "${v}" for flag --${name}: not a number`);
      flags[name] = Number(v);
    } else flags[name] = v;
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (flag: string) => () => {
      if (i + 1 >= argv.length) throw berthError('InvalidArgument', `flag needs an argument: ${flag}`);
      return argv[++i];
    };
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (!(name in specs)) throw berthError('InvalidArgument', `unknown flag: --${name}`);
      set(name, eq > 0 ? a.slice(eq + 1) : undefined, next(`--${name}`));
    } else if (a.startsWith('-') && a.length > 1 && a !== '-') {
      for (let j = 1; j < a.length; j++) {
        const name = byShort.get(a[j]);
        if (!name) throw berthError('InvalidArgument', `unknown shorthand flag: '${a[j]}' in ${a}`);
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

export function helpText(usage: string, specs: Record<string, FlagSpec>): string {
  const lines = [`Usage:  ${usage}`, ''];
  const entries = Object.entries(specs).filter(([, s]) => s.doc);
  if (entries.length) {
    lines.push('Options:');
    for (const [name, s] of entries) {
      const left = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'bool' ? '' : ` ${s.type === 'number' ? 'int' : 'string'}`}`;
      lines.push(`  ${left.padEnd(28)} ${s.doc}`);
    }
  }
  return lines.join('\n') + '\n';
}
