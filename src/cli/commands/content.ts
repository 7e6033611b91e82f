import { pipeline } from 'node:stream/promises';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { ctrAge, ctrSize, ctrTable, labelList, needArgs } from './ctr-common.ts';

/** `berth content ls|get|rm`, ctr's `content` view of the blob store (shared by every namespace). */
interface Blob {
  digest: string;
  size: number;
  createdAt: string;
  labels: Record<string, string>;
}

const lsSpecs = { quiet: { type: 'bool', short: 'q', doc: 'Print only the blob digest' } } as const;

export const ls: Command = {
  usage: 'berth content ls [OPTIONS]',
  summary: 'List all blobs in the store',
  flags: lsSpecs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, lsSpecs);
    return daemonCall(env, async () => {
      const blobs = await env.client().call<Blob[]>('GET', '/content');
      if (flags.quiet) env.stdout.write(blobs.map((b) => `${b.digest}\n`).join(''));
      else env.stdout.write(ctrTable(['DIGEST', 'SIZE', 'AGE', 'LABELS'], blobs.map((b) => [b.digest, ctrSize(b.size), ctrAge(b.createdAt), labelList(b.labels) || '-'])));
      return 0;
    });
  },
};

export const get: Command = {
  usage: 'berth content get DIGEST',
  summary: 'Write a blob to standard output',
  flags: {},
  args: ['content', 'none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length !== 1) return needArgs(env.stderr, 'content get', this.usage, 'exactly 1 argument');
    return daemonCall(env, async () => {
      const body = await env.client().raw('GET', `/content/${encodeURIComponent(args[0])}`);
      await pipeline(body, env.stdout, { end: false });
      return 0;
    });
  },
};

export const rm: Command = {
  usage: 'berth content rm DIGEST [DIGEST...]',
  summary: 'Remove one or more blobs from the store',
  flags: {},
  args: ['content'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    if (args.length < 1) return needArgs(env.stderr, 'content rm', this.usage, 'at least 1 argument');
    let failed = false;
    for (const digest of args) {
      const code = await daemonCall(env, async () => {
        await env.client().call('DELETE', `/content/${encodeURIComponent(digest)}`);
        return 0;
      });
      failed ||= code !== 0;
    }
    return failed ? 1 : 0;
  },
};
