import type { ApiClient } from '../api/native/client.ts';
import type { Command, CommandEnv } from './command.ts';

/**
 * The berth command line. Each command lives in its own module under commands/,
 * loaded on demand so start-up stays small. Aliases map docker's two-word
 * forms (`image ls`) and short forms (`images`) onto one module.
 */
const commands: Record<string, () => Promise<{ command: Command }>> = {
  version: () => import('./commands/version.ts'),
  info: () => import('./commands/info.ts'),
  'system prune': () => import('./commands/system-prune.ts'),
  'system df': () => import('./commands/system-df.ts'),
  run: () => import('./commands/run.ts'),
  create: () => import('./commands/create.ts'),
  start: () => import('./commands/start.ts'),
  stop: () => import('./commands/stop.ts'),
  kill: () => import('./commands/kill.ts'),
  restart: () => import('./commands/restart.ts'),
  rm: () => import('./commands/rm.ts'),
  ps: () => import('./commands/ps.ts'),
  logs: () => import('./commands/logs.ts'),
  exec: () => import('./commands/exec.ts'),
  attach: () => import('./commands/attach.ts'),
  wait: () => import('./commands/wait.ts'),
  inspect: () => import('./commands/inspect.ts'),
  top: () => import('./commands/top.ts'),
  stats: () => import('./commands/stats.ts'),
  pause: () => import('./commands/pause.ts'),
  unpause: () => import('./commands/unpause.ts'),
  rename: () => import('./commands/rename.ts'),
  cp: () => import('./commands/cp.ts'),
  export: () => import('./commands/export.ts'),
  commit: () => import('./commands/commit.ts'),
  diff: () => import('./commands/diff.ts'),
  update: () => import('./commands/update.ts'),
  events: () => import('./commands/events.ts'),
  'container prune': () => import('./commands/container-prune.ts'),
  volume: () => import('./commands/volume.ts'),
  pull: () => import('./commands/pull.ts'),
  push: () => import('./commands/push.ts'),
  images: () => import('./commands/images.ts'),
  tag: () => import('./commands/tag.ts'),
  rmi: () => import('./commands/rmi.ts'),
  'image inspect': () => import('./commands/image-inspect.ts'),
  'image history': () => import('./commands/image-history.ts'),
  'image prune': () => import('./commands/image-prune.ts'),
  save: () => import('./commands/save.ts'),
  load: () => import('./commands/load.ts'),
  import: () => import('./commands/import.ts'),
  login: () => import('./commands/login.ts'),
  logout: () => import('./commands/logout.ts'),
  network: () => import('./commands/network.ts'),
  'network create': () => import('./commands/network-create.ts'),
  'network ls': () => import('./commands/network-ls.ts'),
  'network inspect': () => import('./commands/network-inspect.ts'),
  'network rm': () => import('./commands/network-rm.ts'),
  'network prune': () => import('./commands/network-prune.ts'),
  'network connect': () => import('./commands/network-connect.ts'),
  'network disconnect': () => import('./commands/network-disconnect.ts'),
  port: () => import('./commands/port.ts'),
};

const aliases: Record<string, string> = {
  'container ls': 'ps',
  'container list': 'ps',
  'container run': 'run',
  'container create': 'create',
  'container start': 'start',
  'container stop': 'stop',
  'container kill': 'kill',
  'container restart': 'restart',
  'container rm': 'rm',
  'container logs': 'logs',
  'container exec': 'exec',
  'container attach': 'attach',
  'container wait': 'wait',
  'container inspect': 'inspect',
  'container top': 'top',
  'container stats': 'stats',
  'container pause': 'pause',
  'container unpause': 'unpause',
  'container rename': 'rename',
  'container cp': 'cp',
  'container export': 'export',
  'container commit': 'commit',
  'container diff': 'diff',
  'container update': 'update',
  'image ls': 'images',
  'image list': 'images',
  'image pull': 'pull',
  'image push': 'push',
  'image tag': 'tag',
  'image rm': 'rmi',
  'image remove': 'rmi',
  'image save': 'save',
  'image load': 'load',
  'image import': 'import',
  history: 'image history',
  'system info': 'info',
  'system events': 'events',
  'container port': 'port',
  'network list': 'network ls',
  'network remove': 'network rm',
};

const globalHelp = `Usage:  berth [OPTIONS] COMMAND

A container engine: images, containers and networks.

Global options:
  -H, --host string        daemon socket (unix://PATH); BERTH_HOST (default unix:///run/berth/berth.sock)
  -n, --namespace string   namespace; BERTH_NAMESPACE (default "default")
  -h, --help               print usage
  -v, --version            print version

Commands:
`;

/**
 * What runs a command needs from whoever started it: the user's stdio,
 * environment and working directory, and their signals. main.ts gives its own
 * process's; berthd's CLI host gives those of the thin client it serves.
 */
export type CliIo = Omit<CommandEnv, 'client'> & {
  /** Set when berthd runs the command: the daemon's own socket, and an abort when the client goes away. */
  hosted?: { host: string; signal: AbortSignal };
};

/** Sentinel of runCli: the command must run in the user's own process (Command.local). */
export const RUN_LOCALLY = 'local';

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
    if (a === '-H' || a.startsWith('--host')) host = value('--host');
    else if (a === '-n' || a.startsWith('--namespace')) namespace = value('--namespace');
    else if (a === '-h' || a === '--help') return printHelp(io);
    else if (a === '-v' || a === '--version') {
      io.stdout.write('berth version 0.1.0\n');
      return 0;
    } else if (a.startsWith('-')) {
      io.stderr.write(`berth: unknown flag: ${a}\nSee 'berth --help'.\n`);
      return 125;
    } else break;
  }
  const rest = argv.slice(i);
  if (rest.length === 0) return printHelp(io);
  let name = rest[0];
  let args = rest.slice(1);
  const two = `${rest[0]} ${rest[1] ?? ''}`;
  if (aliases[two] || commands[two]) {
    name = aliases[two] ?? two;
    args = rest.slice(2);
  } else if (aliases[name]) name = aliases[name];
  const load = commands[name];
  if (!load) {
    const sub = [...Object.keys(commands), ...Object.keys(aliases)].filter((k) => k.startsWith(`${rest[0]} `));
    if (sub.length && (rest.length === 1 || rest[1] === '--help' || rest[1] === '-h')) return printGroupHelp(io, rest[0], sub);
    const what = sub.length && rest[1] ? `${rest[0]} ${rest[1]}` : rest[0];
    io.stderr.write(`berth: '${what}' is not a berth command.\nSee 'berth ${sub.length ? `${rest[0]} ` : ''}--help'\n`);
    return 125;
  }
  const { command } = await load();
  if (command.local && io.hosted) return RUN_LOCALLY;
  if (args.includes('--help') || (args[0] === '-h' && args.length === 1)) {
    io.stdout.write(`${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  // The client (and node:http with it) loads only for commands that talk to berthd.
  const { ApiClient: Client } = await import('../api/native/client.ts');
  let client: ApiClient | undefined;
  // A hosted command talks to the daemon that runs it, whatever path the client used to reach it.
  if (io.hosted) host = io.hosted.host;
  const env: CommandEnv = Object.create(io, {
    client: { value: () => (client ??= new Client({ host, namespace, signal: io.hosted?.signal })) },
    signal: { value: io.hosted?.signal },
  }) as CommandEnv;
  return command.run(args, env);
}

/** `berth image`, `berth container`, `berth system`: the group's commands, as docker lists them. */
async function printGroupHelp(io: CliIo, group: string, keys: string[]): Promise<number> {
  const rows: string[][] = [];
  for (const key of [...new Set(keys)].sort()) {
    const { command } = await commands[aliases[key] ?? key]();
    rows.push([key.slice(group.length + 1), command.summary]);
  }
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  io.stdout.write(`Usage:  berth ${group} COMMAND\n\nCommands:\n${rows.map(([n, s]) => `  ${n.padEnd(width)}${s}`).join('\n')}\n\nRun 'berth ${group} COMMAND --help' for more information on a command.\n`);
  return 0;
}

function printHelp(io: CliIo): number {
  const names = [...new Set(Object.keys(commands))].sort();
  io.stdout.write(globalHelp + names.map((n) => `  ${n}`).join('\n') + '\n');
  return 0;
}

