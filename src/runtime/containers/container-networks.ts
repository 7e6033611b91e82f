import type { NetworkAttachment } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';

/**
 * How `network connect` and `disconnect` change what a container joins at
 * its next start, as docker records them: a connect adds a further network,
 * a disconnect removes it; disconnecting the primary network promotes the
 * first further one (its aliases and address with it) or, with none left,
 * leaves the container on `none` until the next connect.
 */

/** Whether `attachment` joins networks at all (none, host and container: do not). */
export function joinsNetworks(a: NetworkAttachment): boolean {
  return a.mode !== 'none' && a.mode !== 'host' && !a.mode.startsWith('container:');
}

/** `isNet(ref)` tells whether a recorded network reference (name or id) is the network in question. */
export function withConnected(a: NetworkAttachment, name: string, entry: { aliases?: string[]; ipAddress?: string }, isNet: (ref: string) => boolean, container: string): NetworkAttachment {
  // Disconnected from every network (not started with --network none): the first connect is primary again.
  if (a.mode === 'none' && a.extraNetworks) return { ...a, mode: name, aliases: entry.aliases, ipAddress: entry.ipAddress, extraNetworks: undefined };
  if (!joinsNetworks(a)) throw berthError('FailedPrecondition', `container ${container} uses network mode ${a.mode} and cannot be connected to network ${name}`);
  if (isNet(a.mode) || (a.extraNetworks ?? []).some((x) => isNet(x.network))) throw berthError('Conflict', `endpoint with name ${container} already exists in network ${name}`);
  return { ...a, extraNetworks: [...(a.extraNetworks ?? []), { network: name, ...entry }] };
}

export function withDisconnected(a: NetworkAttachment, name: string, isNet: (ref: string) => boolean, container: string): NetworkAttachment {
  const extra = a.extraNetworks ?? [];
  if (joinsNetworks(a) && isNet(a.mode)) {
    const [next, ...rest] = extra;
    // An empty list tells this apart from --network none, so a later connect is allowed.
    if (!next) return { ...a, mode: 'none', aliases: undefined, ipAddress: undefined, ports: undefined, publishAll: undefined, extraNetworks: [] };
    return { ...a, mode: next.network, aliases: next.aliases, ipAddress: next.ipAddress, extraNetworks: rest.length ? rest : undefined };
  }
  if (!extra.some((x) => isNet(x.network))) throw berthError('NotFound', `container ${container} is not connected to network ${name}`);
  const rest = extra.filter((x) => !isNet(x.network));
  return { ...a, extraNetworks: rest.length ? rest : undefined };
}
