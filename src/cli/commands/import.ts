import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  change: { type: 'list', short: 'c', doc: 'Apply Dockerfile instruction to the created image' },
  message: { type: 'string', short: 'm', doc: 'Set commit message for imported image' },
  platform: { type: 'string', doc: 'Set platform if server is multi-platform capable' },
} as const;

export const command: Command = {
  usage: 'berth import [OPTIONS] file|- [REPOSITORY[:TAG]]',
  summary: 'Import the contents from a tarball to create a filesystem image',
  flags: specs,
  local: true,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1 || args.length > 2) {
      env.stderr.write(`"berth import" requires at least 1 and at most 2 arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const file = args[0];
    if (file !== '-') {
      try {
        await access(file);
      } catch {
        env.stderr.write(`open ${file}: no such file or directory\n`);
        return 1;
      }
    }
    return daemonCall(env, async () => {
      const upload: Readable = file === '-' ? (env.stdin as unknown as Readable) : createReadStream(file);
      const r = await env.client().call<{ Id: string }>('POST', '/images/import', {
        upload,
        query: { name: args[1], change: flags.change as string[], message: flags.message as string | undefined, platform: flags.platform as string | undefined },
      });
      env.stdout.write(`${r.Id}\n`);
      return 0;
    });
  },
};
