import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { renderTemplate } from '../template.ts';

const specs = {
  format: { type: 'string', short: 'f', doc: 'Format output using a custom template' },
  type: { type: 'string', doc: 'Only inspect objects of the given type (container, image, network, volume)' },
  size: { type: 'bool', short: 's', doc: 'Display total file sizes (ignored)' },
} as const;

const paths: Record<string, (name: string) => string> = {
  container: (n) => `/containers/${encodeURIComponent(n)}/json`,
  image: (n) => `/images/inspect/${n.split('/').map(encodeURIComponent).join('/')}`,
  network: (n) => `/networks/${encodeURIComponent(n)}`,
  volume: (n) => `/volumes/${encodeURIComponent(n)}`,
};

export const command: Command = {
  usage: 'berth inspect [OPTIONS] NAME|ID [NAME|ID...]',
  summary: 'Return low-level information on berth objects',
  flags: specs,
  args: ['container'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1) {
      env.stderr.write(`berth: "inspect" requires at least 1 argument.\nSee 'berth inspect --help'.\n`);
      return 1;
    }
    const types = flags.type ? [flags.type as string] : ['container', 'image', 'network', 'volume'];
    if (types.some((t) => !paths[t])) {
      env.stderr.write(`berth: "${flags.type}" is not a valid value for --type\n`);
      return 1;
    }
    const out: unknown[] = [];
    let failed = false;
    for (const name of args) {
      let found: unknown;
      for (const t of types) {
        try {
          found = await env.client().call('GET', paths[t](name));
          break;
        } catch (err) {
          if ((err as { kind?: string }).kind !== 'NotFound') {
            env.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
            return 1;
          }
        }
      }
      if (found === undefined) {
        env.stderr.write(`Error: No such object: ${name}\n`);
        failed = true;
        continue;
      }
      out.push(found);
    }
    const format = flags.format as string | undefined;
    if (format) for (const o of out) env.stdout.write(renderTemplate(format, o as Record<string, unknown>) + '\n');
    else env.stdout.write(JSON.stringify(out, null, 4) + '\n');
    return failed ? 1 : 0;
  },
};
