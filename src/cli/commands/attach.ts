import { attachStreams } from '../attach.ts';
import type { Command } from '../command.ts';
import { parseDetachKeys } from '../container-run.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  'no-stdin': { type: 'bool', doc: 'Do not attach STDIN' },
  'sig-proxy': { type: 'bool', default: true, doc: 'Proxy all received signals to the process' },
  'detach-keys': { type: 'string', doc: 'Override the key sequence for detaching a container' },
} as const;

export const command: Command = {
  usage: 'berth attach [OPTIONS] CONTAINER',
  summary: "Attach local standard input, output, and error streams to a running container",
  flags: specs,
  args: ['container', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`berth: "attach" requires exactly 1 argument.\nSee 'berth attach --help'.\n`);
      return 1;
    }
    return daemonCall(env, async () => {
      const client = env.client();
      const c = await client.call<{ Id: string; State: { Running: boolean; Paused: boolean }; Config: { Tty: boolean; OpenStdin: boolean } }>('GET', `/containers/${encodeURIComponent(args[0])}/json`);
      if (!c.State.Running) throw new Error('You cannot attach to a stopped container, start it first');
      const stdin = c.Config.OpenStdin && !flags['no-stdin'];
      const exit = client.call<{ exitCode: number }>('POST', `/containers/${c.Id}/wait`);
      exit.catch(() => {});
      const sock = await client.upgrade('POST', `/containers/${c.Id}/attach`, { query: { stdin } });
      const a = attachStreams(env, client, sock, { tty: c.Config.Tty, stdin, resizePath: `/containers/${c.Id}/resize`, signalTarget: flags['sig-proxy'] !== false ? c.Id : undefined, detachKeys: parseDetachKeys(flags['detach-keys'] as string | undefined) });
      a.resize();
      const { detached } = await a.done;
      if (detached) {
        env.stderr.write('\nread escape sequence\n');
        return 0;
      }
      return (await exit).exitCode;
    });
  },
};
