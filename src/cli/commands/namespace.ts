import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { ctrTable, labelList, needArgs } from './ctr-common.ts';

/** `berth namespace ls|create|rm`, ctr's `namespaces` view. */
interface Namespace {
  name: string;
  labels: Record<string, string>;
}

const lsSpecs = { quiet: { type: 'bool', short: 'q', doc: 'Print only the namespace name' } } as const;

export const ls: Command = {
  usage: 'berth namespace ls [OPTIONS]',
  summary: 'List namespaces',
  flags: lsSpecs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, lsSpecs);
    return daemonCall(env, async () => {
      const list = await env.client().call<Namespace[]>('GET', '/namespaces');
      if (flags.quiet) env.stdout.write(list.map((n) => `${n.name}\n`).join(''));
      else env.stdout.write(ctrTable(['NAME', 'LABELS'], list.map((n) => [n.name, labelList(n.labels)])));
      return 0;
    });
  },
};

export const create: Command = {
  usage: 'berth namespace create NAME [KEY=VALUE...]',
  summary: 'Create a new namespace',
  flags: {},
  args: ['none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length < 1) return needArgs(env.stderr, 'namespace create', this.usage, 'at least 1 argument');
    const labels: Record<string, string> = {};
    for (const kv of args.slice(1)) {
      const eq = kv.indexOf('=');
      if (eq <= 0) {
        env.stderr.write(`berth: invalid label "${kv}": expected KEY=VALUE\n`);
        return 125;
      }
      labels[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return daemonCall(env, async () => {
      await env.client().call('POST', '/namespaces', { body: { name: args[0], labels } });
      return 0;
    });
  },
};

export const rm: Command = {
  usage: 'berth namespace rm NAME [NAME...]',
  summary: 'Remove one or more namespaces (refused while they hold anything)',
  flags: {},
  args: ['namespace'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length < 1) return needArgs(env.stderr, 'namespace rm', this.usage, 'at least 1 argument');
    let failed = false;
    for (const name of args) {
      const code = await daemonCall(env, async () => {
        await env.client().call('DELETE', `/namespaces/${encodeURIComponent(name)}`);
        env.stdout.write(`${name}\n`);
        return 0;
      });
      failed ||= code !== 0;
    }
    return failed ? 1 : 0;
  },
};
