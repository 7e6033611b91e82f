import type { ApiClient } from '../api/native/client.ts';
import type { Command } from './command.ts';
import type { ArgKind, FlagSpec } from './flags.ts';
import { GLOBAL_FLAGS } from './help.ts';
import { aliases, commands, groupCommands, groupNames, resolve } from './registry.ts';

/**
 * `berth __complete WORD... CURRENT`: the candidates for the last word of a
 * command line, one a line, for the scripts of `berth completion` (cobra's
 * hidden `__complete`). Commands, subcommands and flags come from the
 * registry and the commands' own definitions; container, image, network,
 * volume (and the low-level views') names come from the daemon, in the
 * namespace the line names. A daemon that cannot be reached gives no names,
 * never an error: completion must not print into the user's line.
 */
export interface CompleteDeps {
  host: string;
  namespace: string;
  client(namespace: string, host: string): Promise<ApiClient>;
}

export async function complete(words: string[], deps: CompleteDeps): Promise<string> {
  const cur = words.length ? words[words.length - 1] : '';
  const before = words.slice(0, -1);
  const out = (names: Iterable<string>) => {
    const uniq = [...new Set(names)].filter((n) => n.startsWith(cur)).sort();
    return uniq.length ? uniq.join('\n') + '\n' : '';
  };
  let host = deps.host;
  let namespace = deps.namespace;
  let i = 0;
  // Global flags before the command, as dispatch reads them.
  for (; i < before.length; i++) {
    const w = before[i];
    const g = GLOBAL_FLAGS.find((f) => f.long === w || f.short === w);
    if (g?.value) {
      if (i + 1 >= before.length) break;
      if (g.long === '--host') host = before[i + 1];
      else namespace = before[i + 1];
      i++;
    } else if (w.startsWith('--host=')) host = w.slice(7);
    else if (w.startsWith('--namespace=')) namespace = w.slice(12);
    else if (!w.startsWith('-')) break;
  }
  const names = (kind: ArgKind) => daemonNames(kind, () => deps.client(namespace, host));
  if (i < before.length && (before[i] === '-n' || before[i] === '--namespace')) return out(await names('namespace'));
  if (i < before.length && (before[i] === '-H' || before[i] === '--host')) return '';
  const rest = before.slice(i);
  if (rest.length === 0) {
    if (cur.startsWith('-')) return out(GLOBAL_FLAGS.flatMap((f) => [f.long, f.short]));
    return out([...groupNames(), ...[...Object.keys(commands), ...Object.keys(aliases)].filter((k) => !k.includes(' ') && resolve(k))]);
  }
  let target = resolve(`${rest[0]} ${rest[1] ?? ''}`);
  let args = rest.slice(2);
  if (!target) {
    if (rest.length === 1 && groupNames().includes(rest[0])) return out(groupCommands(rest[0]).map((c) => c.name));
    target = resolve(rest[0]);
    args = rest.slice(1);
  }
  if (!target) return '';
  const { command } = await commands[target]();
  return out(await completeArgs(command, args, cur, names));
}

async function completeArgs(command: Command, args: string[], cur: string, names: (kind: ArgKind) => Promise<string[]>): Promise<string[]> {
  const specs: Record<string, FlagSpec> = command.flags ?? {};
  const byShort = new Map(Object.entries(specs).flatMap(([n, s]) => (s.short ? [[s.short, n] as const] : [])));
  let positional = 0;
  let valueOf: FlagSpec | undefined;
  for (const a of args) {
    if (valueOf) {
      valueOf = undefined;
      continue;
    }
    if (a.startsWith('--')) {
      const s = specs[a.slice(2)];
      if (s && s.type !== 'bool' && !a.includes('=')) valueOf = s;
    } else if (a.startsWith('-') && a.length > 1) {
      const s = specs[byShort.get(a[a.length - 1]) ?? ''];
      if (s && s.type !== 'bool') valueOf = s;
    } else positional++;
  }
  if (valueOf) return valueOf.complete ? names(valueOf.complete) : [];
  if (cur.startsWith('-')) return [...Object.keys(specs).map((n) => `--${n}`), '--help'];
  const kinds = command.args ?? [];
  if (!kinds.length) return [];
  return names(kinds[Math.min(positional, kinds.length - 1)]);
}

/** The names of one kind of object, from the daemon; none when it cannot answer. */
async function daemonNames(kind: ArgKind, client: () => Promise<ApiClient>): Promise<string[]> {
  try {
    const c = await client();
    switch (kind) {
      case 'container':
        return (await c.call<Array<{ Names: string[] }>>('GET', '/containers/json', { query: { all: true } })).flatMap((x) => x.Names.map((n) => n.replace(/^\//, '')));
      case 'image':
        return (await c.call<Array<{ RepoTags: string[] }>>('GET', '/images/json')).flatMap((x) => x.RepoTags.filter((t) => t !== '<none>:<none>'));
      case 'network':
        return (await c.call<Array<{ Name: string }>>('GET', '/networks')).map((n) => n.Name);
      case 'volume':
        return (await c.call<Array<{ name: string }>>('GET', '/volumes')).map((v) => v.name);
      case 'namespace':
        return (await c.call<Array<{ name: string }>>('GET', '/namespaces')).map((n) => n.name);
      case 'content':
        return (await c.call<Array<{ digest: string }>>('GET', '/content')).map((b) => b.digest);
      case 'snapshot':
        return (await c.call<Array<{ name: string }>>('GET', '/snapshots')).map((s) => s.name);
      case 'task':
        return (await c.call<Array<{ id: string }>>('GET', '/tasks')).map((t) => t.id);
      default:
        return [];
    }
  } catch {
    return [];
  }
}
