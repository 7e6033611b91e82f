import type { ImageHistoryItem } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { humanAge, humanSize, table } from '../output.ts';
import { formatRows } from '../template.ts';

const specs = {
  human: { type: 'bool', short: 'H', default: true, doc: 'Print sizes and dates in human readable format (default true)' },
  'no-trunc': { type: 'bool', doc: "Don't truncate output" },
  quiet: { type: 'bool', short: 'q', doc: 'Only show image IDs' },
  format: { type: 'string', doc: 'Format output using a custom template: json, table, or a Go template' },
} as const;

export const command: Command = {
  usage: 'berth image history [OPTIONS] IMAGE',
  summary: 'Show the history of an image',
  flags: specs,
  args: ['image', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`"berth image history" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      const items = await env.client().call<ImageHistoryItem[]>('GET', `/images/history/${args[0].split('/').map(encodeURIComponent).join('/')}`);
      const noTrunc = !!flags['no-trunc'];
      const id = (i: ImageHistoryItem) => (i.Id === '<missing>' || noTrunc ? i.Id : i.Id.replace(/^sha256:/, '').slice(0, 12));
      if (flags.quiet) {
        env.stdout.write(items.map((i) => `${id(i)}\n`).join(''));
        return 0;
      }
      const rows = items.map((i) => {
        const by = noTrunc || i.CreatedBy.length <= 45 ? i.CreatedBy : `${i.CreatedBy.slice(0, 44)}…`;
        return {
          ID: id(i),
          CreatedSince: flags.human ? humanAge(i.Created * 1000) : rfc3339(i.Created),
          CreatedAt: rfc3339(i.Created),
          CreatedBy: by,
          Size: flags.human ? humanSize(i.Size) : String(i.Size),
          Comment: i.Comment,
        };
      });
      const format = flags.format as string | undefined;
      if (format && format !== 'table') {
        env.stdout.write(formatRows(format, rows, { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' }));
        return 0;
      }
      env.stdout.write(table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment])));
      return 0;
    });
  },
};

/** docker's history time (Go's RFC3339, whole seconds): "2024-05-01T10:20:30Z". */
function rfc3339(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}
