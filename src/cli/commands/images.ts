import type { ImageSummary } from '../../core/images.ts';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { goTime, humanAge, humanSize, table } from '../output.ts';
import { formatRows } from '../template.ts';

const specs = {
  all: { type: 'bool', short: 'a', doc: 'Show all images (default hides intermediate images)' },
  quiet: { type: 'bool', short: 'q', doc: 'Only show image IDs' },
  digests: { type: 'bool', doc: 'Show digests' },
  'no-trunc': { type: 'bool', doc: "Don't truncate output" },
  format: { type: 'string', doc: 'Format output using a custom template: json, table, or a Go template' },
  filter: { type: 'list', short: 'f', doc: 'Filter output based on conditions provided (dangling=true, reference=PATTERN, label=K[=V])' },
} as const;

interface Row {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
  Containers: string;
  VirtualSize: string;
  SharedSize: string;
  UniqueSize: string;
}

/** One row per repository:tag as docker prints them; untagged images are `<none>`. */
export function imageRows(images: ImageSummary[], opts: { noTrunc: boolean; digests: boolean }): Row[] {
  const rows: Row[] = [];
  for (const img of images) {
    const id = opts.noTrunc ? img.Id : img.Id.replace(/^sha256:/, '').slice(0, 12);
    const base = {
      ID: id,
      CreatedSince: humanAge(img.Created * 1000),
      CreatedAt: goTime(new Date(img.Created * 1000)),
      Size: humanSize(img.Size),
      VirtualSize: humanSize(img.Size),
      SharedSize: 'N/A',
      UniqueSize: 'N/A',
      Containers: img.Containers ? String(img.Containers) : 'N/A',
    };
    const digestOf = (repo: string) => img.RepoDigests.find((d) => d.slice(0, d.lastIndexOf('@')) === repo)?.split('@')[1] ?? '<none>';
    if (!img.RepoTags.length) {
      const digRepos = img.RepoDigests.map((d) => d.slice(0, d.lastIndexOf('@')));
      if (digRepos.length) for (const r of new Set(digRepos)) rows.push({ ...base, Repository: r, Tag: '<none>', Digest: digestOf(r) });
      else rows.push({ ...base, Repository: '<none>', Tag: '<none>', Digest: '<none>' });
      continue;
    }
    for (const t of img.RepoTags) {
      const colon = t.lastIndexOf(':');
      const repo = t.slice(0, colon);
      rows.push({ ...base, Repository: repo, Tag: t.slice(colon + 1), Digest: digestOf(repo) });
    }
  }
  return rows;
}

export const command: Command = {
  usage: 'berth images [OPTIONS] [REPOSITORY[:TAG]]',
  summary: 'List images',
  flags: specs,
  args: ['image', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length > 1) {
      env.stderr.write(`"berth images" requires at most 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const filters: Record<string, string[]> = {};
    for (const f of flags.filter as string[]) {
      const eq = f.indexOf('=');
      if (eq <= 0) {
        env.stderr.write(`invalid filter '${f}': expected KEY=VALUE\n`);
        return 125;
      }
      (filters[f.slice(0, eq)] ??= []).push(f.slice(eq + 1));
    }
    if (args[0]) (filters.reference ??= []).push(args[0]);
    return daemonCall(env, async () => {
      const images = await env.client().call<ImageSummary[]>('GET', '/images/json', {
        query: { all: flags.all ? '1' : undefined, filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
      });
      const noTrunc = !!flags['no-trunc'];
      if (flags.quiet) {
        const ids = [...new Set(images.map((i) => (noTrunc ? i.Id : i.Id.replace(/^sha256:/, '').slice(0, 12))))];
        env.stdout.write(ids.map((i) => `${i}\n`).join(''));
        return 0;
      }
      const rows = imageRows(images, { noTrunc, digests: !!flags.digests });
      const format = flags.format as string | undefined;
      if (format && format !== 'table') {
        const headers = { ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', Containers: 'CONTAINERS', VirtualSize: 'VIRTUAL SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE' };
        env.stdout.write(formatRows(format, rows as unknown as Record<string, unknown>[], headers));
        return 0;
      }
      const headers = flags.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
      env.stdout.write(table(headers, rows.map((r) => (flags.digests ? [r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size] : [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size]))));
      return 0;
    });
  },
};
