import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { renderTemplate } from '../template.ts';

const specs = {
  format: { type: 'string', short: 'f', doc: 'Format output using a custom template: json or a Go template' },
} as const;

const enc = (name: string) => name.split('/').map(encodeURIComponent).join('/');

export const command: Command = {
  usage: 'berth image inspect [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Display detailed information on one or more images',
  flags: specs,
  args: ['image'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1) {
      env.stderr.write(`"berth image inspect" requires at least 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      const found: Record<string, unknown>[] = [];
      let code = 0;
      for (const name of args) {
        try {
          found.push(await env.client().call<Record<string, unknown>>('GET', `/images/inspect/${enc(name)}`));
        } catch (err) {
          if ((err as { kind?: string }).kind !== 'NotFound') throw err;
          env.stderr.write(`Error: No such image: ${name}\n`);
          code = 1;
        }
      }
      const format = flags.format as string | undefined;
      if (format && format !== 'json') env.stdout.write(found.map((f) => renderTemplate(format, f) + '\n').join(''));
      else env.stdout.write(JSON.stringify(found, null, 4) + '\n');
      return code;
    });
  },
};
