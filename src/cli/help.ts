import type { Command } from './command.ts';
import { helpText } from './flags.ts';
import { aliases, aliasesOf, commands, commonCommands, groupCommands, groupNames, groups, resolve } from './registry.ts';

/**
 * The help screens, docker 28's layout, built from the registry and each
 * command's own definition: a command added to the registry shows up here
 * with its summary, usage and flags.
 */

const GLOBAL_OPTIONS = `Global Options:
  -H, --host string        Daemon socket to connect to (env BERTH_HOST) (default "unix:///run/berth/berth.sock")
  -n, --namespace string   Namespace of the engine's objects (env BERTH_NAMESPACE) (default "default")
  -h, --help               Print usage
  -v, --version            Print version information and quit
`;

/** The global options, for completion: name and whether a value follows. */
export const GLOBAL_FLAGS = [
  { long: '--host', short: '-H', value: true },
  { long: '--namespace', short: '-n', value: true },
  { long: '--help', short: '-h', value: false },
  { long: '--version', short: '-v', value: false },
];

async function load(target: string): Promise<Command> {
  return (await commands[target]()).command;
}

/** cobra's command list: names padded to 11 columns (wider when a name is longer), then the summary. */
function list(rows: Array<[string, string]>): string {
  const width = Math.max(11, ...rows.map(([n]) => n.length));
  return rows.map(([n, s]) => `  ${n.padEnd(width)} ${s}`).join('\n');
}

/** `berth --help`: Common Commands, Management Commands, the low-level (ctr) views, then every other command. */
export async function globalHelp(): Promise<string> {
  const common = commonCommands.filter((n) => resolve(n));
  const shown = new Set(common);
  const others = [...new Set([...Object.keys(commands), ...Object.keys(aliases)])].filter((k) => !k.includes(' ') && !shown.has(k) && resolve(k)).sort();
  const summaries = async (names: string[]) => Promise.all(names.map(async (n): Promise<[string, string]> => [n, (await load(resolve(n)!)).summary]));
  const present = groupNames();
  const grouped = (heading: 'management' | 'low-level'): Array<[string, string]> =>
    present.map((g): [string, string] => [g, groups[g]?.summary ?? `Manage ${g}`]).filter(([g]) => (groups[g]?.heading ?? 'management') === heading);
  const section = (heading: string, rows: Array<[string, string]>) => (rows.length ? [`${heading}:\n${list(rows)}\n`] : []);
  const sections = [
    "Usage:  berth [OPTIONS] COMMAND\n\nA container engine: images, containers, networks and volumes, with docker's commands and ctr's low-level views\n",
    ...section('Common Commands', await summaries(common)),
    ...section('Management Commands', grouped('management')),
    ...section('Low-level Commands', grouped('low-level')),
    ...section('Commands', await summaries(others)),
    GLOBAL_OPTIONS,
    "Run 'berth COMMAND --help' for more information on a command.\n",
  ];
  return sections.join('\n');
}

/** `berth image` and `berth image --help`: the group's commands, as docker lists them. */
export async function groupHelp(group: string): Promise<string> {
  const rows = await Promise.all(groupCommands(group).map(async ({ name, target }): Promise<[string, string]> => [name, (await load(target)).summary]));
  return `Usage:  berth ${group} COMMAND\n\n${groups[group]?.summary ?? `Manage ${group}`}\n\nCommands:\n${list(rows)}\n\nRun 'berth ${group} COMMAND --help' for more information on a command.\n`;
}

/** `berth CMD --help`: usage, summary, the other names it answers to, its flags with descriptions and defaults. */
export function commandHelp(target: string, command: Command, typed = target): string {
  const names = aliasesOf(target);
  // docker's usage line names the command as it was typed (`container ls`).
  return helpText(command.usage.replace(`berth ${target}`, `berth ${typed}`), command.flags ?? {}, { summary: command.summary, aliases: names.length > 1 ? names.map((n) => `berth ${n}`) : undefined });
}
