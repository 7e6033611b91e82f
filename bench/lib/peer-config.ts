/**
 * Config files the bench writes for the peers and for berthd: pure, so they
 * are unit-tested without root (peer-config.test.ts).
 */

export interface CniOptions {
  name: string;
  bridge: string;
  /** A /24 as "10.x.y" (no last octet). */
  subnet: string;
  /** host-local's allocation store, on the bench's own filesystem rather than /var/lib/cni. */
  dataDir: string;
}

/**
 * A conflist of bridge (host-local IPAM, the node's gateway, NAT) and
 * portmap, as a Kubernetes node's default network. The loopback plugin is
 * not chained: containerd (CRI and ctr alike, through go-cni) brings up
 * each pod's lo with it on its own.
 */
export function cniConflist(o: CniOptions): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: o.name,
        plugins: [
          {
            type: 'bridge',
            bridge: o.bridge,
            isGateway: true,
            ipMasq: true,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: `${o.subnet}.0/24`, gateway: `${o.subnet}.1` }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: o.dataDir },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

export interface ContainerdOptions {
  root: string;
  state: string;
  socket: string;
  /** The CRI plugin's settings; without them the plugin is disabled. */
  cri?: { cniConfDir: string; cniBinDir: string; sandboxImage: string };
}

const toml = (s: string) => JSON.stringify(s);

/** containerd 1.6's config.toml: private root, state and socket, only the overlayfs snapshotter, and the CRI plugin on or off. */
export function containerdToml(o: ContainerdOptions): string {
  const disabled = ['io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.aufs', 'io.containerd.snapshotter.v1.devmapper'];
  if (!o.cri) disabled.unshift('io.containerd.grpc.v1.cri');
  const lines = [
    'version = 2',
    `root = ${toml(o.root)}`,
    `state = ${toml(o.state)}`,
    `disabled_plugins = [${disabled.map(toml).join(', ')}]`,
    '[grpc]',
    `  address = ${toml(o.socket)}`,
    '[ttrpc]',
    `  address = ${toml(o.socket + '.ttrpc')}`,
    '[debug]',
    '  address = ""',
    '  level = "warn"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.monitor.v1.cgroups"]',
    '  no_prometheus = true',
  ];
  if (o.cri) {
    lines.push(
      '[plugins."io.containerd.grpc.v1.cri"]',
      `  sandbox_image = ${toml(o.cri.sandboxImage)}`,
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      '  enable_selinux = false',
      // A sandbox's oom_score_adj of -998 needs CAP_SYS_RESOURCE, which root lacks in a container such as this host; runc then fails in nsexec.
      '  restrict_oom_score_adj = true',
      '[plugins."io.containerd.grpc.v1.cri".containerd]',
      '  snapshotter = "overlayfs"',
      '  default_runtime_name = "runc"',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
      '  runtime_type = "io.containerd.runc.v2"',
      // runc's state under the bench's run dir, not the default /run/containerd/runc.
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
      `  Root = ${toml(o.state + '/runc')}`,
      '[plugins."io.containerd.grpc.v1.cri".cni]',
      `  bin_dir = ${toml(o.cri.cniBinDir)}`,
      `  conf_dir = ${toml(o.cri.cniConfDir)}`,
      '  max_conf_num = 1',
      // The bench's registry is plain HTTP on loopback.
      '[plugins."io.containerd.grpc.v1.cri".registry.mirrors]',
    );
    const host = /^([^/]+)\//.exec(o.cri.sandboxImage)?.[1];
    if (host) lines.push(`  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.${toml(host)}]`, `    endpoint = [${toml(`http://${host}`)}]`);
  }
  return lines.join('\n') + '\n';
}

/** A containerd-format hosts.toml that sends berth to a plain-HTTP registry. */
export function hostsToml(host: string): string {
  return `server = ${toml(`http://${host}`)}\n\n[host.${toml(`http://${host}`)}]\n  capabilities = ["pull", "resolve", "push"]\n`;
}
