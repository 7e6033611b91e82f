import type { ApiClient } from '../api/native/client.ts';
import { RUN_LOCALLY, type CommandEnv } from './command.ts';
import { isFlagError } from './flags.ts';
import { commands, groupNames, resolve } from './registry.ts';

/**
 * What runs a command needs from whoever started it: the user's stdio,
 * environment and working directory, and their signals. main.ts gives its own
 * process's; berthd's CLI host gives those of the thin client it serves.
 */
export type CliIo = Omit<CommandEnv, 'client' | 'inDaemon'> & {
  /** Set when berthd runs the command: the daemon's own socket, and an abort when the client goes away. */
  hosted?: { host: string; signal: AbortSignal };
};

/** Sentinel of runCli: the command must run in the user's own process (Command.local). */
export { RUN_LOCALLY };

/** Runs one berth command line. Errors are printed on io.stderr; resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number | typeof RUN_LOCALLY> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    const { kindOf } = await import('../core/errors.ts');
    const msg = err instanceof Error ? err.message : String(err);
    io.stderr.write(`berth: ${msg}\n`);
    if (kindOf(err) === 'Unknown' && err instanceof Error && io.env.BERTH_DEBUG) io.stderr.write(`${err.stack}\n`);
    const exit = (err as { exit?: unknown } | undefined)?.exit;
    return typeof exit === 'number' ? exit : 125;
  }
}

/** docker's usage error: the message, the command's usage, where to read more; exit 125. */
function usageError(io: CliIo, message: string, usage: string, helpOf: string): number {
  io.stderr.write(`${message}\n\nUsage:  ${usage}\n\nRun '${helpOf} --help' for more information\n`);
  return 125;
}

async function dispatch(argv: string[], io: CliIo): Promise<number | typeof RUN_LOCALLY> {
  let host = io.env.BERTH_HOST || 'unix:///run/berth/berth.sock';
  let namespace = io.env.BERTH_NAMESPACE || 'default';
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    const value = (flag: string) => {
      const eq = a.indexOf('=');
      if (eq > 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw Object.assign(new Error(`flag needs an argument: ${flag}`), { exit: 125 });
      return argv[++i];
    };
    if (a === '-H' || a === '--host' || a.startsWith('--host=')) host = value('--host');
    else if (a === '-n' || a === '--namespace' || a.startsWith('--namespace=')) namespace = value('--namespace');
    else if (a === '-h' || a === '--help') return printHelp(io);
    else if (a === '-v' || a === '--version') {
      io.stdout.write('berth version 0.1.0\n');
      return 0;
    } else if (a.startsWith('-')) {
      return usageError(io, a.startsWith('--') ? `unknown flag: ${a.replace(/=.*/, '')}` : `unknown shorthand flag: '${a[1]}' in ${a}`, 'berth [OPTIONS] COMMAND', 'berth');
    } else break;
  }
  let rest = argv.slice(i);
  // docker's `help [COMMAND]` is `[COMMAND] --help`.
  if (rest[0] === 'help') rest = [...rest.slice(1), '--help'];
  if (rest.length === 0 || (rest.length === 1 && rest[0] === '--help')) return printHelp(io);
  // A hosted command talks to the daemon that runs it, whatever path the client used to reach it.
  if (io.hosted) host = io.hosted.host;
  if (rest[0] === '__complete') {
    const { complete } = await import('./complete.ts');
    // The words may name another socket (-H) and namespace (-n); a hosted command keeps to its daemon.
    const client = async (ns: string, h: string) => {
      const { ApiClient: Client } = await import('../api/native/client.ts');
      return new Client({ host: io.hosted ? host : h, namespace: ns, signal: io.hosted?.signal });
    };
    io.stdout.write(await complete(rest.slice(1), { host, namespace, client }));
    return 0;
  }
  let name = rest[0];
  let args = rest.slice(1);
  let typed = rest[0];
  const two = `${rest[0]} ${rest[1] ?? ''}`;
  if (resolve(two)) {
    name = resolve(two)!;
    typed = two;
    args = rest.slice(2);
  } else name = resolve(name) ?? name;
  const load = commands[name];
  if (!load) {
    const { groupHelp } = await import('./help.ts');
    const isGroup = groupNames().includes(rest[0]);
    if (isGroup && (rest.length === 1 || rest[1] === '--help' || rest[1] === '-h')) {
      io.stdout.write(await groupHelp(rest[0]));
      return 0;
    }
    // docker 28: an unknown command is not a usage error, it exits 1.
    const what = isGroup ? `${rest[0]} ${rest[1]}` : rest[0];
    io.stderr.write(`berth: unknown command: berth ${what}\n\n${isGroup ? `Usage:  berth ${rest[0]}\n\n` : ''}Run 'berth ${isGroup ? `${rest[0]} ` : ''}--help' for more information\n`);
    return 1;
  }
  const { command } = await load();
  if (command.local && io.hosted) return RUN_LOCALLY;
  const dashDash = args.indexOf('--');
  const own = dashDash < 0 ? args : args.slice(0, dashDash);
  if (own.includes('--help') || (args[0] === '-h' && args.length === 1)) {
    const { commandHelp } = await import('./help.ts');
    io.stdout.write(commandHelp(name, command, typed));
    return 0;
  }
  let client: ApiClient | undefined;
  // The client (and node:http with it) loads only for commands that talk to berthd.
  const { ApiClient: Client } = await import('../api/native/client.ts');
  const env: CommandEnv = Object.create(io, {
    client: { value: () => (client ??= new Client({ host, namespace, signal: io.hosted?.signal })) },
    signal: { value: io.hosted?.signal },
    inDaemon: { value: !!io.hosted },
  }) as CommandEnv;
  try {
    return await command.run(args, env);
  } catch (err) {
    // docker names the command as it was typed: `container ls`, not `ps`.
    if (isFlagError(err)) return usageError(io, err.message, command.usage.replace(`berth ${name}`, `berth ${typed}`), `berth ${typed}`);
    throw err;
  }
}

async function printHelp(io: CliIo): Promise<number> {
  const { globalHelp } = await import('./help.ts');
  io.stdout.write(await globalHelp());
  return 0;
}
