import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { humanAge, humanSize, table } from '../output.ts';
import { formatRows } from '../template.ts';

const specs = {
  verbose: { type: 'bool', short: 'v', doc: 'Show detailed information on space usage' },
  format: { type: 'string', doc: 'Format output using a custom template: json, table, or a Go template' },
} as const;

interface Report {
  Images?: Array<{ Id: string; RepoTags: string[]; Size: number; Containers: number }>;
  Containers?: Array<{ Id: string; Names: string[]; Image: string; State: string; SizeRw: number }>;
  Volumes?: Array<{ Name: string; UsageData: { Size: number; RefCount: number } }>;
  BuildCache?: Array<{ ID: string; Type: string; Size: number; InUse: boolean; Shared: boolean; CreatedAt: string; LastUsedAt: string | null; UsageCount: number }>;
}

const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');

/** docker system df: images, containers' writable layers, local volumes and the build cache, and what pruning would free. */
export const command: Command = {
  usage: 'berth system df [OPTIONS]',
  summary: 'Show berth disk usage',
  flags: specs,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`"berth system df" accepts no arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      const r = await env.client().call<Report>('GET', '/system/df');
      const images = r.Images ?? [];
      const containers = r.Containers ?? [];
      const volumes = r.Volumes ?? [];
      const cache = r.BuildCache ?? [];
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const imgSize = sum(images.map((i) => i.Size));
      const imgFree = sum(images.filter((i) => !i.Containers).map((i) => i.Size));
      const ctrSize = sum(containers.map((c) => c.SizeRw));
      const ctrFree = sum(containers.filter((c) => c.State !== 'running' && c.State !== 'paused').map((c) => c.SizeRw));
      const volSize = sum(volumes.map((v) => v.UsageData.Size));
      const volFree = sum(volumes.filter((v) => !v.UsageData.RefCount).map((v) => v.UsageData.Size));
      const cacheSize = sum(cache.map((c) => c.Size));
      const cacheFree = sum(cache.filter((c) => !c.InUse).map((c) => c.Size));
      const rows = [
        { Type: 'Images', TotalCount: String(images.length), Active: String(images.filter((i) => i.Containers > 0).length), Size: humanSize(imgSize), Reclaimable: humanSize(imgFree) + pct(imgFree, imgSize) },
        { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => c.State === 'running' || c.State === 'paused').length), Size: humanSize(ctrSize), Reclaimable: humanSize(ctrFree) + pct(ctrFree, ctrSize) },
        { Type: 'Local Volumes', TotalCount: String(volumes.length), Active: String(volumes.filter((v) => v.UsageData.RefCount > 0).length), Size: humanSize(volSize), Reclaimable: humanSize(volFree) + pct(volFree, volSize) },
        { Type: 'Build Cache', TotalCount: String(cache.length), Active: String(cache.filter((c) => c.InUse).length), Size: humanSize(cacheSize), Reclaimable: humanSize(cacheFree) + pct(cacheFree, cacheSize) },
      ];
      const format = flags.format as string | undefined;
      if (format === 'json' && !flags.verbose) {
        env.stdout.write(rows.map((row) => JSON.stringify(row) + '\n').join(''));
        return 0;
      }
      if (format && format !== 'table') {
        env.stdout.write(formatRows(format, rows, { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' }));
        return 0;
      }
      if (!flags.verbose) {
        env.stdout.write(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], rows.map((x) => [x.Type, x.TotalCount, x.Active, x.Size, x.Reclaimable])));
        return 0;
      }
      env.stdout.write('Images space usage:\n\n');
      env.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE', 'CONTAINERS'], images.flatMap((i) => {
        const id = i.Id.replace(/^sha256:/, '').slice(0, 12);
        const tags = i.RepoTags.length ? i.RepoTags : ['<none>:<none>'];
        return tags.map((t) => [t.slice(0, t.lastIndexOf(':')), t.slice(t.lastIndexOf(':') + 1), id, humanSize(i.Size), String(i.Containers)]);
      })));
      env.stdout.write('\nContainers space usage:\n\n');
      env.stdout.write(table(['CONTAINER ID', 'IMAGE', 'SIZE', 'STATUS', 'NAMES'], containers.map((c) => [c.Id.slice(0, 12), c.Image, humanSize(c.SizeRw), c.State, c.Names.map((n) => n.replace(/^\//, '')).join(',')])));
      env.stdout.write('\nLocal Volumes space usage:\n\n');
      env.stdout.write(table(['VOLUME NAME', 'LINKS', 'SIZE'], volumes.map((v) => [v.Name, String(v.UsageData.RefCount), humanSize(v.UsageData.Size)])));
      env.stdout.write(`\nBuild cache usage: ${humanSize(cacheSize)}\n\n`);
      env.stdout.write(table(['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'], cache.map((c) => [c.ID, c.Type, humanSize(c.Size), humanAge(c.CreatedAt), c.LastUsedAt ? humanAge(c.LastUsedAt) : '', String(c.UsageCount), String(c.Shared)])));
      return 0;
    });
  },
};
