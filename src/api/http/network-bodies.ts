import { berthError } from '../../core/errors.ts';
import { t } from '../../core/schema.ts';
import type { CreateNetworkRequest, NetworkFilters } from '../../network/types.ts';

/**
 * docker's network request bodies and filters as the network service's
 * requests, shared by the doors that serve docker's network paths.
 */
export interface NetworkCreateBody {
  Name?: string;
  Driver?: string;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> | null } | null;
}

export interface NetworkConnectBody {
  Container?: string;
  EndpointConfig?: { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null } | null;
}

/** InvalidArgument for more than one subnet: a berth network has one. */
export function createNetworkRequest(b: NetworkCreateBody): CreateNetworkRequest {
  const configs = b.IPAM?.Config ?? [];
  if (configs.length > 1) throw berthError('InvalidArgument', 'only one IPAM config (one subnet) per network is supported');
  return {
    name: b.Name ?? '',
    driver: b.Driver,
    internal: b.Internal,
    labels: b.Labels ?? undefined,
    options: b.Options ?? undefined,
    subnet: configs[0]?.Subnet,
    gateway: configs[0]?.Gateway,
  };
}

/** connect's container and endpoint; InvalidArgument without a container. */
export function connectRequest(network: string, b: NetworkConnectBody): { container: string; network: string; aliases?: string[]; ipAddress?: string } {
  if (!b.Container) throw berthError('InvalidArgument', 'a container is required');
  return { container: b.Container, network, aliases: b.EndpointConfig?.Aliases ?? undefined, ipAddress: b.EndpointConfig?.IPAMConfig?.IPv4Address || undefined };
}

/** docker's `filters` for networks, checked: InvalidArgument for a key networks do not filter on. */
export function networkFilters(f: Record<string, string[]>): NetworkFilters {
  const out: NetworkFilters = {};
  for (const [k, vals] of Object.entries(f)) {
    if (k === 'name' || k === 'id' || k === 'driver' || k === 'label' || k === 'type') out[k] = vals;
    else throw berthError('InvalidArgument', `invalid filter '${k}'`);
  }
  return out;
}

/** The network bodies as schemas (both doors take docker's shapes). */
export const networkCreateSchema = t.object({
  Name: t.string(),
  Driver: t.string(),
  Internal: t.boolean(),
  Attachable: t.boolean(),
  EnableIPv6: t.boolean(),
  CheckDuplicate: t.boolean(),
  Labels: t.map(t.string()),
  Options: t.map(t.string()),
  IPAM: t.object({ Driver: t.string(), Config: t.array(t.object({ Subnet: t.string(), Gateway: t.string(), IPRange: t.string() })), Options: t.map(t.string()) }),
});

export const networkConnectSchema = t.object({
  Container: t.string(),
  EndpointConfig: t.object({ Aliases: t.strings(), IPAMConfig: t.object({ IPv4Address: t.string(), IPv6Address: t.string() }) }),
});

export const networkDisconnectSchema = t.object({ Container: t.string(), Force: t.boolean() });
