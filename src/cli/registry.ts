/**
 * The berth command line's table of contents, which dispatch, help and
 * completion all read. Each command lives in its own module under commands/
 * (a group's small subcommands may share one), loaded on demand so
 * start-up stays small; the module's `Command` carries its usage, summary
 * and flags. A key of two words puts the command in a group (`network ls`);
 * aliases map docker's two-word forms (`image ls`) and short forms
 * (`images`) onto one command.
 */
import type { Command } from './command.ts';
import { byCodeUnit } from '../core/order.ts';

export type CommandLoader = () => Promise<{ command: Command }>;

export const commands: Record<string, CommandLoader> = {
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
  'volume create': () => import('./commands/volume.ts').then((m) => ({ command: m.create })),
  'volume ls': () => import('./commands/volume.ts').then((m) => ({ command: m.ls })),
  'volume inspect': () => import('./commands/volume.ts').then((m) => ({ command: m.inspect })),
  'volume rm': () => import('./commands/volume.ts').then((m) => ({ command: m.rm })),
  'volume prune': () => import('./commands/volume.ts').then((m) => ({ command: m.prune })),
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
  'network create': () => import('./commands/network-create.ts'),
  'network ls': () => import('./commands/network-ls.ts'),
  'network inspect': () => import('./commands/network-inspect.ts'),
  'network rm': () => import('./commands/network-rm.ts'),
  'network prune': () => import('./commands/network-prune.ts'),
  'network connect': () => import('./commands/network-connect.ts'),
  'network disconnect': () => import('./commands/network-disconnect.ts'),
  port: () => import('./commands/port.ts'),
  build: () => import('./commands/build.ts'),
  'builder prune': () => import('./commands/builder-prune.ts'),
  completion: () => import('./commands/completion.ts'),
  'namespace ls': () => import('./commands/namespace.ts').then((m) => ({ command: m.ls })),
  'namespace create': () => import('./commands/namespace.ts').then((m) => ({ command: m.create })),
  'namespace rm': () => import('./commands/namespace.ts').then((m) => ({ command: m.rm })),
  'content ls': () => import('./commands/content.ts').then((m) => ({ command: m.ls })),
  'content get': () => import('./commands/content.ts').then((m) => ({ command: m.get })),
  'content rm': () => import('./commands/content.ts').then((m) => ({ command: m.rm })),
  'snapshot ls': () => import('./commands/snapshot.ts').then((m) => ({ command: m.ls })),
  'snapshot info': () => import('./commands/snapshot.ts').then((m) => ({ command: m.info })),
  'snapshot usage': () => import('./commands/snapshot.ts').then((m) => ({ command: m.usage })),
  'snapshot mounts': () => import('./commands/snapshot.ts').then((m) => ({ command: m.mounts })),
  'snapshot rm': () => import('./commands/snapshot.ts').then((m) => ({ command: m.rm })),
  'task ls': () => import('./commands/task.ts').then((m) => ({ command: m.ls })),
  'task kill': () => import('./commands/task.ts').then((m) => ({ command: m.kill })),
  'task ps': () => import('./commands/task.ts').then((m) => ({ command: m.ps })),
  'lease ls': () => import('./commands/lease.ts').then((m) => ({ command: m.ls })),
};

export const aliases: Record<string, string> = {
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
  'volume list': 'volume ls',
  'volume remove': 'volume rm',
  'namespace list': 'namespace ls',
  'content list': 'content ls',
  'snapshot list': 'snapshot ls',
  'task list': 'task ls',
  'lease list': 'lease ls',
  'namespace remove': 'namespace rm',
  'content remove': 'content rm',
  'snapshot remove': 'snapshot rm',
  'image build': 'build',
  'buildx build': 'build',
  'builder build': 'build',
  'buildx prune': 'builder prune',
};

/** Groups (docker's management commands): the first word of two-word commands, with their summary. */
export const groups: Record<string, { summary: string; heading: 'management' | 'low-level' }> = {
  builder: { summary: 'Manage builds', heading: 'management' },
  container: { summary: 'Manage containers', heading: 'management' },
  image: { summary: 'Manage images', heading: 'management' },
  network: { summary: 'Manage networks', heading: 'management' },
  system: { summary: 'Manage berth', heading: 'management' },
  volume: { summary: 'Manage volumes', heading: 'management' },
  namespace: { summary: 'Manage namespaces (ctr namespaces)', heading: 'low-level' },
  content: { summary: 'Manage content blobs (ctr content)', heading: 'low-level' },
  snapshot: { summary: 'Manage snapshots (ctr snapshots)', heading: 'low-level' },
  task: { summary: 'Manage tasks (ctr tasks)', heading: 'low-level' },
  lease: { summary: 'Manage leases (ctr leases)', heading: 'low-level' },
};

/** docker's "Common Commands", in docker's order; a name with no command here is skipped. */
export const commonCommands = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'login', 'logout', 'search', 'version', 'info'];

/** The command a key runs: an alias's target, or the key itself; undefined if there is none. */
export function resolve(key: string): string | undefined {
  const target = aliases[key] ?? key;
  return commands[target] ? target : undefined;
}

/** Every group that has at least one command, sorted. */
export function groupNames(): string[] {
  return [...new Set([...Object.keys(commands), ...Object.keys(aliases)].filter((k) => k.includes(' ')).map((k) => k.split(' ')[0]))].sort();
}

/**
 * A group's subcommands as docker lists them: one name per command (the
 * shortest, so `image ls` rather than `image list`), sorted.
 */
export function groupCommands(group: string): Array<{ name: string; target: string }> {
  const best = new Map<string, string>();
  for (const key of [...Object.keys(commands), ...Object.keys(aliases)]) {
    if (!key.startsWith(`${group} `)) continue;
    const target = resolve(key);
    if (!target) continue;
    const name = key.slice(group.length + 1);
    const seen = best.get(target);
    if (seen === undefined || name.length < seen.length) best.set(target, name);
  }
  return [...best].map(([target, name]) => ({ name, target })).sort((a, b) => byCodeUnit(a.name, b.name));
}

/** Every other name a command answers to, as docker's help lists them ("berth container ls, berth ps"). */
export function aliasesOf(target: string): string[] {
  return [...Object.entries(aliases).filter(([, t]) => t === target).map(([k]) => k), target];
}
