import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { table } from '../output.ts';
import { confirm } from '../prompt.ts';
import { keyValues } from './network-common.ts';
import { formatRows, renderTemplate } from '../template.ts';

/**
 * `berth volume create|ls|inspect|rm|prune`, docker's local volumes. One
 * module for the group: each subcommand is small.
 */
interface Volume {
  name: string;
  driver: string;
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  options: Record<string, string>;
}

const dockerView = (v: Volume) => ({ CreatedAt: v.createdAt, Driver: v.driver, Labels: v.labels, Mountpoint: v.mountpoint, Name: v.name, Options: v.options, Scope: 'local' });

function filtersOf(list: string[]): string | undefined {
  const f: Record<string, string[]> = {};
  for (const x of list) {
    const eq = x.indexOf('=');
    if (eq < 0) throw Object.assign(new Error('bad format of filter (expected name=value)'), { exit: 1 });
    (f[x.slice(0, eq)] ??= []).push(x.slice(eq + 1));
  }
  return Object.keys(f).length ? JSON.stringify(f) : undefined;
}

const createSpecs = {
  driver: { type: 'string', short: 'd', default: 'local', doc: 'Specify volume driver name' },
  label: { type: 'list', doc: 'Set metadata for a volume' },
  opt: { type: 'list', short: 'o', doc: 'Set driver specific options' },
  name: { type: 'string', doc: 'Specify volume name' },
} as const;

export const create: Command = {
  usage: 'berth volume create [OPTIONS] [VOLUME]',
  summary: 'Create a volume',
  flags: createSpecs,
  args: ['none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, createSpecs);
    return daemonCall(env, async () => {
      const v = await env.client().call<Volume>('POST', '/volumes/create', {
        body: { name: (flags.name as string) ?? args[0], driver: flags.driver, labels: keyValues(flags.label as string[]), options: keyValues(flags.opt as string[]) },
      });
      env.stdout.write(`${v.name}\n`);
      return 0;
    });
  },
};

const lsSpecs = {
  quiet: { type: 'bool', short: 'q', doc: 'Only display volume names' },
  filter: { type: 'list', short: 'f', doc: "Provide filter values (e.g. 'dangling=true')" },
  format: { type: 'string', doc: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" },
} as const;

export const ls: Command = {
  usage: 'berth volume ls [OPTIONS]',
  summary: 'List volumes',
  flags: lsSpecs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, lsSpecs);
    return daemonCall(env, async () => {
      const vols = await env.client().call<Volume[]>('GET', '/volumes', { query: { filters: filtersOf(flags.filter as string[]) } });
      if (flags.quiet) env.stdout.write(vols.map((v) => v.name + '\n').join(''));
      else if (flags.format) env.stdout.write(formatRows(flags.format as string, vols.map((v) => ({ ...dockerView(v), Labels: Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(',') })), { Name: 'VOLUME NAME', Driver: 'DRIVER', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE', Labels: 'LABELS', CreatedAt: 'CREATED' }));
      else env.stdout.write(table(['DRIVER', 'VOLUME NAME'], vols.map((v) => [v.driver, v.name])));
      return 0;
    });
  },
};

const inspectSpecs = { format: { type: 'string', short: 'f', doc: 'Format output using a custom template' } } as const;

export const inspect: Command = {
  usage: 'berth volume inspect [OPTIONS] VOLUME [VOLUME...]',
  summary: 'Display detailed information on one or more volumes',
  flags: inspectSpecs,
  args: ['volume'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, inspectSpecs);
    if (!args.length) {
      env.stderr.write('berth: "volume inspect" requires at least 1 argument.\n');
      return 1;
    }
    let failed = false;
    const out: unknown[] = [];
    for (const name of args) {
      try {
        out.push(dockerView(await env.client().call<Volume>('GET', `/volumes/${encodeURIComponent(name)}`)));
      } catch (err) {
        env.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
        failed = true;
      }
    }
    if (flags.format) for (const o of out) env.stdout.write(renderTemplate(flags.format as string, o as Record<string, unknown>) + '\n');
    else env.stdout.write(JSON.stringify(out, null, 4) + '\n');
    return failed ? 1 : 0;
  },
};

const rmSpecs = { force: { type: 'bool', short: 'f', doc: 'Force the removal of one or more volumes' } } as const;

export const rm: Command = {
  usage: 'berth volume rm [OPTIONS] VOLUME [VOLUME...]',
  summary: 'Remove one or more volumes',
  flags: rmSpecs,
  args: ['volume'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, rmSpecs);
    if (!args.length) {
      env.stderr.write('berth: "volume rm" requires at least 1 argument.\n');
      return 1;
    }
    let failed = false;
    for (const name of args) {
      try {
        await env.client().call('DELETE', `/volumes/${encodeURIComponent(name)}`, { query: { force: !!flags.force } });
        env.stdout.write(`${name}\n`);
      } catch (err) {
        env.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
        failed = true;
      }
    }
    return failed ? 1 : 0;
  },
};

const pruneSpecs = {
  force: { type: 'bool', short: 'f', doc: 'Do not prompt for confirmation' },
  all: { type: 'bool', short: 'a', doc: 'Remove all unused volumes, not just anonymous ones' },
  filter: { type: 'list', doc: "Provide filter values (e.g. 'label=<label>')" },
} as const;

export const prune: Command = {
  usage: 'berth volume prune [OPTIONS]',
  summary: 'Remove unused local volumes',
  flags: pruneSpecs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, pruneSpecs);
    if (!flags.force && !(await confirm(env, `WARNING! This will remove ${flags.all ? 'all local volumes not used by at least one container' : 'anonymous local volumes not used by at least one container'}.\nAre you sure you want to continue? [y/N] `))) return 0;
    return daemonCall(env, async () => {
      const f = JSON.parse(filtersOf(flags.filter as string[]) ?? '{}') as Record<string, string[]>;
      if (flags.all) f.all = ['true'];
      const r = await env.client().call<{ removed: string[] }>('POST', '/volumes/prune', { query: { filters: JSON.stringify(f) } });
      if (r.removed.length) env.stdout.write(`Deleted Volumes:\n${r.removed.join('\n')}\n\n`);
      env.stdout.write('Total reclaimed space: 0B\n');
      return 0;
    });
  },
};
