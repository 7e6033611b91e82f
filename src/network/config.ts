import type { ConfigSection, SectionValues } from '../core/config.ts';

/**
 * The [network] config section and its typed form. Defaults live here,
 * beside the code that uses them.
 */
export const networkSection: ConfigSection = {
  name: 'network',
  doc: 'container networking: CNI plugins, the default bridge network, address pools, DNS',
  fields: {
    plugin_dirs: { type: 'string[]', default: ['/usr/lib/cni', '/opt/cni/bin'], doc: 'directories searched, in order, for CNI plugin binaries' },
    plugin_timeout: { type: 'number', default: 30, doc: 'seconds a CNI plugin may run before it is killed; too low fails under load, too high stalls starts' },
    bridge: { type: 'string', default: 'berth0', doc: 'Linux bridge of the default "bridge" network' },
    subnet: { type: 'string', default: '10.87.0.0/16', doc: 'subnet of the default "bridge" network; chosen to avoid docker (172.17/16) and podman (10.88/16) defaults' },
    gateway: { type: 'string', default: '', doc: 'gateway of the default network; empty = first address of the subnet' },
    subnet_pool: { type: 'string', default: '10.90.0.0/15', doc: 'pool for user networks created without --subnet' },
    pool_size: { type: 'number', default: 24, doc: 'prefix length of each subnet taken from subnet_pool (24 = 253 containers per network)' },
    mtu: { type: 'number', default: 0, doc: 'MTU of bridges and veths; 0 lets the plugin pick (1500)' },
    resolv_conf: { type: 'string', default: '/etc/resolv.conf', doc: 'host resolv.conf copied into containers' },
    stub_resolv_conf: {
      type: 'string',
      default: '/run/systemd/resolve/resolv.conf',
      doc: 'where the upstream servers of a local stub resolver (127.0.0.53) are listed; used when resolv_conf names only loopback servers',
    },
    firewall: {
      type: 'string',
      default: 'auto',
      doc: 'chain the CNI firewall plugin (per-container FORWARD accept rules): "auto" only when the host\'s FORWARD policy is DROP (as docker sets it), "true", or "false"; costs one plugin run per container',
    },
    fallback_dns: { type: 'string[]', default: ['8.8.8.8', '8.8.4.4'], doc: 'nameservers used when the host has none a container can reach (docker\'s default)' },
  },
};

export interface NetworkConfig {
  pluginDirs: string[];
  pluginTimeoutMs: number;
  bridge: string;
  subnet: string;
  gateway: string;
  subnetPool: string;
  poolSize: number;
  mtu: number;
  resolvConf: string;
  stubResolvConf: string;
  fallbackDns: string[];
  firewall: string;
}

export function networkConfig(v: SectionValues): NetworkConfig {
  return {
    pluginDirs: v.plugin_dirs as string[],
    pluginTimeoutMs: (v.plugin_timeout as number) * 1000,
    bridge: v.bridge as string,
    subnet: v.subnet as string,
    gateway: v.gateway as string,
    subnetPool: v.subnet_pool as string,
    poolSize: v.pool_size as number,
    mtu: v.mtu as number,
    resolvConf: v.resolv_conf as string,
    stubResolvConf: v.stub_resolv_conf as string,
    fallbackDns: v.fallback_dns as string[],
    firewall: v.firewall as string,
  };
}

/** Defaults as a typed config, for tests and tools. */
export function defaultNetworkConfig(overrides: Partial<NetworkConfig> = {}): NetworkConfig {
  const v: SectionValues = {};
  for (const [k, f] of Object.entries(networkSection.fields)) v[k] = Array.isArray(f.default) ? [...f.default] : f.default;
  return { ...networkConfig(v), ...overrides };
}
