import path from 'node:path';
import { readUserFile } from '../../core/user-file.ts';
import { attachStreams } from '../attach.ts';
import type { Command } from '../command.ts';
import { parseDetachKeys } from '../container-run.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  detach: { type: 'bool', short: 'd', doc: 'Detached mode: run command in the background' },
  interactive: { type: 'bool', short: 'i', doc: 'Keep STDIN open even if not attached' },
  tty: { type: 'bool', short: 't', doc: 'Allocate a pseudo-TTY' },
  env: { type: 'list', short: 'e', doc: 'Set environment variables' },
  'env-file': { type: 'list', doc: 'Read in a file of environment variables' },
  workdir: { type: 'string', short: 'w', doc: 'Working directory inside the container' },
  user: { type: 'string', short: 'u', doc: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
  privileged: { type: 'bool', doc: 'Give extended privileges to the command' },
  'detach-keys': { type: 'string', doc: 'Override the key sequence for detaching a container' },
} as const;

export const command: Command = {
  usage: 'berth exec [OPTIONS] CONTAINER COMMAND [ARG...]',
  summary: 'Execute a command in a running container',
  flags: specs,
  args: ['container', 'none'],
  async run(argv, env) {
    const { flags, args: positional } = parseFlags(argv, specs, { stopAtPositional: true });
    if (positional.length < 2) {
      env.stderr.write(`berth: "exec" requires at least 2 arguments.\nSee 'berth exec --help'.\n\nUsage:  ${this.usage}\n`);
      return 1;
    }
    const [container, ...cmd] = positional;
    const envList = [...(flags.env as string[])];
    for (const f of flags['env-file'] as string[]) {
      let text: string;
      try {
        text = await readUserFile(path.resolve(env.cwd, f), { name: f, signal: env.signal });
      } catch (err) {
        env.stderr.write(`berth: ${(err as Error).message} (--env-file)\n`);
        return 125;
      }
      for (const line of text.split('\n')) if (line.trim() && !line.startsWith('#')) envList.push(line.trim());
    }
    const vars = envList.map((e) => (e.includes('=') ? e : env.env[e] !== undefined ? `${e}=${env.env[e]}` : e)).filter((e) => e.includes('='));
    const client = env.client();
    let execId: string;
    try {
      ({ id: execId } = await client.call<{ id: string }>('POST', `/containers/${encodeURIComponent(container)}/exec`, {
        body: {
          cmd,
          env: vars,
          workingDir: flags.workdir,
          user: flags.user,
          tty: !!flags.tty,
          attachStdin: !!flags.interactive,
          privileged: !!flags.privileged,
          ...(flags.tty && env.stdout.isTTY && env.stdout.rows && env.stdout.columns ? { consoleSize: { height: env.stdout.rows, width: env.stdout.columns } } : {}),
        },
      }));
    } catch (err) {
      env.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
      return (err as { kind?: string }).kind === 'NotFound' ? 1 : 126;
    }
    if (flags.detach) {
      await client.call('POST', `/exec/${execId}/start`, { query: { detach: true } });
      return 0;
    }
    try {
      const sock = await client.upgrade('POST', `/exec/${execId}/start`);
      const a = attachStreams(env, client, sock, { tty: !!flags.tty, stdin: !!flags.interactive, resizePath: `/exec/${execId}/resize`, detachKeys: parseDetachKeys(flags['detach-keys'] as string | undefined) });
      a.resize();
      const { detached } = await a.done;
      if (detached) return 0;
      return (await client.call<{ exitCode: number }>('POST', `/exec/${execId}/wait`)).exitCode;
    } catch (err) {
      env.stderr.write(`berth: ${(err as Error).message}\n`);
      const code = (err as { exitCode?: number }).exitCode;
      if (/executable file not found|no such file/i.test((err as Error).message)) return 127;
      if (/permission denied/i.test((err as Error).message)) return 126;
      return code ?? 126;
    }
  },
};
