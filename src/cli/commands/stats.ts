import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { totalmem } from 'node:os';
import { binarySize, humanSize, table } from '../output.ts';
import { formatRows } from '../template.ts';

const specs = {
  'no-stream': { type: 'bool', doc: 'Disable streaming stats and only pull the first result' },
  all: { type: 'bool', short: 'a', doc: 'Show all containers (default shows just running)' },
  format: { type: 'string', doc: 'Format output using a custom template' },
  'no-trunc': { type: 'bool', doc: 'Do not truncate output' },
} as const;

interface Sample {
  id: string;
  name: string;
  read: string;
  cpu: { totalNs: number };
  memory: { usage: number; limit: number; cache: number };
  pids: { current: number };
  blkio: { readBytes: number; writeBytes: number };
}

export const command: Command = {
  usage: 'berth stats [OPTIONS] [CONTAINER...]',
  summary: 'Display a live stream of container(s) resource usage statistics',
  flags: specs,
  args: ['container'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    return daemonCall(env, async () => {
      const client = env.client();
      let ids = args;
      if (!ids.length) ids = (await client.call<Array<{ Id: string }>>('GET', '/containers/json')).map((c) => c.Id);
      const prev = new Map<string, { cpu: number; at: number }>();
      const sample = async () => {
        const rows = [];
        for (const id of ids) {
          const s = await client.call<Sample>('GET', `/containers/${encodeURIComponent(id)}/stats`, { query: { stream: false } });
          const at = Date.parse(s.read) || Date.now();
          const p = prev.get(s.id);
          prev.set(s.id, { cpu: s.cpu.totalNs, at });
          const cpuPct = p && at > p.at ? ((s.cpu.totalNs - p.cpu) / ((at - p.at) * 1e6)) * 100 : 0;
          const mem = Math.max(0, s.memory.usage - (s.memory.cache ?? 0));
          // No limit of its own: the host's memory is the limit, as docker shows it.
          const limit = s.memory.limit > 0 && s.memory.limit < 2 ** 62 ? Math.min(s.memory.limit, totalmem()) : totalmem();
          rows.push({
            ID: flags['no-trunc'] ? s.id : s.id.slice(0, 12),
            Name: s.name,
            CPUPerc: `${cpuPct.toFixed(2)}%`,
            MemUsage: `${binarySize(mem)} / ${binarySize(limit)}`,
            MemPerc: `${((mem / limit) * 100).toFixed(2)}%`,
            BlockIO: `${humanSize(s.blkio.readBytes)} / ${humanSize(s.blkio.writeBytes)}`,
            PIDs: String(s.pids.current),
          });
        }
        return rows;
      };
      const print = (rows: Awaited<ReturnType<typeof sample>>) => {
        const format = flags.format as string | undefined;
        if (format) return formatRows(format, rows, { ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' });
        return table(['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'BLOCK I/O', 'PIDS'], rows.map((r) => [r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.BlockIO, r.PIDs]));
      };
      if (flags['no-stream']) {
        // Two samples a short time apart, so CPU % means something.
        await sample();
        await new Promise((r) => setTimeout(r, 500));
        env.stdout.write(print(await sample()));
        return 0;
      }
      for (;;) {
        const rows = await sample();
        if (env.stdout.isTTY) env.stdout.write('\x1b[2J\x1b[H');
        env.stdout.write(print(rows));
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
  },
};
