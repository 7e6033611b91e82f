import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';
import { daemonCall, filtersJson } from './network-common.ts';

const specs = {
  force: { type: 'bool', short: 'f', doc: 'Do not prompt for confirmation' },
  filter: { type: 'list', doc: 'Provide filter values (e.g. "label=<key>=<value>")' },
} as const;

export const command: Command = {
  usage: 'berth network prune [OPTIONS]',
  summary: 'Remove all unused networks',
  flags: specs,
  async run(argv, env) {
    const { flags } = parseFlags(argv, specs);
    if (!flags.force) {
      env.stdout.write('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
      const answer = await readLine(env.stdin);
      if (!/^y(es)?$/i.test(answer.trim())) return 0;
    }
    const r = await daemonCall(env, () =>
      env.client().call<{ NetworksDeleted: string[] }>('POST', '/networks/prune', { query: { filters: filtersJson(flags.filter as string[]) } }),
    );
    if (!r.ok) return 1;
    if (r.value.NetworksDeleted.length) env.stdout.write(`Deleted Networks:\n${r.value.NetworksDeleted.join('\n')}\n\n`);
    return 0;
  },
};

function readLine(stdin: NodeJS.ReadStream): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const done = () => {
      stdin.off('data', onData);
      stdin.off('end', done);
      stdin.pause();
      resolve(buf);
    };
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.includes('\n')) done();
    };
    stdin.on('data', onData);
    stdin.on('end', done);
  });
}
