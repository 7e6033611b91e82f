import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { ProgressEvent } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  input: { type: 'string', short: 'i', doc: 'Read from tar archive file, instead of STDIN' },
  quiet: { type: 'bool', short: 'q', doc: 'Suppress the load output' },
} as const;

export const command: Command = {
  usage: 'berth load [OPTIONS]',
  summary: 'Load an image from a tar archive (docker save or OCI layout) or STDIN',
  flags: specs,
  local: true,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`"berth load" accepts no arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const input = flags.input as string | undefined;
    if (!input && env.stdin.isTTY) {
      env.stderr.write('requested load from stdin, but stdin is empty\n');
      return 1;
    }
    if (input) {
      try {
        await access(input);
      } catch {
        env.stderr.write(`open ${input}: no such file or directory\n`);
        return 1;
      }
    }
    return daemonCall(env, async () => {
      const upload: Readable = input ? createReadStream(input) : (env.stdin as unknown as Readable);
      for await (const ev of env.client().stream<ProgressEvent>('POST', '/images/load', { upload })) {
        if (!flags.quiet && !ev.id) env.stdout.write(`${ev.status}\n`);
      }
      return 0;
    });
  },
};
