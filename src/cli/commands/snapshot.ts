import path from 'node:path';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { ctrBytes, ctrTable, needArgs } from './ctr-common.ts';

/** `berth snapshot ls|info|usage|mounts|rm`, ctr's `snapshots` view of the configured snapshotter. */
interface Snapshot {
  name: string;
  kind: 'active' | 'view' | 'committed';
  parent?: string;
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** containerd's Kind names: "Active", "View", "Committed". */
const kindName = (k: string) => k.charAt(0).toUpperCase() + k.slice(1);
const key = (k: string) => encodeURIComponent(k);

export const ls: Command = {
  usage: 'berth snapshot ls',
  summary: 'List snapshots',
  flags: {},
  async run(argv, env) {
    parseFlags(argv, {});
    return daemonCall(env, async () => {
      const r = await env.client().call<{ snapshots: Snapshot[] }>('GET', '/snapshots');
      env.stdout.write(ctrTable(['KEY', 'PARENT', 'KIND'], r.snapshots.map((s) => [s.name, s.parent ?? '', kindName(s.kind)])));
      return 0;
    });
  },
};

export const info: Command = {
  usage: 'berth snapshot info KEY',
  summary: 'Get info about a snapshot',
  flags: {},
  args: ['snapshot', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 1) return needArgs(env.stderr, 'snapshot info', this.usage, 'exactly 1 argument');
    return daemonCall(env, async () => {
      const s = await env.client().call<Snapshot>('GET', `/snapshots/${key(args[0])}`);
      // containerd's snapshots.Info as ctr prints it: empty Parent and Labels left out.
      const out = { Kind: kindName(s.kind), Name: s.name, ...(s.parent ? { Parent: s.parent } : {}), ...(Object.keys(s.labels).length ? { Labels: s.labels } : {}), Created: s.createdAt, Updated: s.updatedAt };
      env.stdout.write(JSON.stringify(out, null, 4) + '\n');
      return 0;
    });
  },
};

export const usage: Command = {
  usage: 'berth snapshot usage [KEY...]',
  summary: 'Usage of snapshots (all of them without a key)',
  flags: {},
  args: ['snapshot'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    return daemonCall(env, async () => {
      const client = env.client();
      const keys = args.length ? args : (await client.call<{ snapshots: Snapshot[] }>('GET', '/snapshots')).snapshots.map((s) => s.name);
      const rows: string[][] = [];
      for (const k of keys) {
        const u = await client.call<{ size: number; inodes: number }>('GET', `/snapshots/${key(k)}/usage`);
        rows.push([k, ctrBytes(u.size), String(u.inodes)]);
      }
      env.stdout.write(ctrTable(['KEY', 'SIZE', 'INODES'], rows));
      return 0;
    });
  },
};

export const mounts: Command = {
  usage: 'berth snapshot mounts TARGET KEY',
  summary: 'Print the mount commands of a snapshot for a target directory',
  flags: {},
  args: ['none', 'snapshot', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 2) return needArgs(env.stderr, 'snapshot mounts', this.usage, 'exactly 2 arguments');
    return daemonCall(env, async () => {
      const list = await env.client().call<Array<{ type: string; source: string; options: string[] }>>('GET', `/snapshots/${key(args[1])}/mounts`);
      const target = path.resolve(env.cwd, args[0]);
      env.stdout.write(list.map((m) => `mount -t ${m.type} ${m.source} ${target} -o ${m.options.join(',')}\n`).join(''));
      return 0;
    });
  },
};

export const rm: Command = {
  usage: 'berth snapshot rm KEY [KEY...]',
  summary: 'Remove one or more snapshots',
  flags: {},
  args: ['snapshot'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length < 1) return needArgs(env.stderr, 'snapshot rm', this.usage, 'at least 1 argument');
    let failed = false;
    for (const k of args) {
      const code = await daemonCall(env, async () => {
        await env.client().call('DELETE', `/snapshots/${key(k)}`);
        return 0;
      });
      failed ||= code !== 0;
    }
    return failed ? 1 : 0;
  },
};
