import { berthError } from '../../core/errors.ts';
import type { ConfigSection, SectionValues } from '../../core/config.ts';

/** The [cri] config section: the Kubernetes CRI v1 gRPC socket. */
export const criSection: ConfigSection = {
  name: 'cri',
  doc: 'the Kubernetes CRI v1 front door (gRPC, for kubelet and crictl)',
  fields: {
    enabled: { type: 'boolean', default: true, doc: 'serve the CRI; false saves loading gRPC (about 150 ms of start-up and some memory) on hosts without kubelet' },
    address: {
      type: 'string',
      default: '',
      doc: 'CRI socket; empty means <state>/cri.sock. Its mode and group are daemon.socket_mode and daemon.socket_group, as for every API socket',
    },
    network: {
      type: 'string',
      default: '',
      doc: 'the berth network pod sandboxes join (a user network made with `berth network create`); empty means the default bridge network. Pods on a user network get its subnet and its NAT, but no name resolution between pods',
    },
    stream_server_address: {
      type: 'string',
      default: '127.0.0.1',
      doc: "address of the streaming server that Exec, Attach and PortForward answer URLs on (containerd's default). It is plain HTTP with no authentication beyond the single-use token in each URL: keep it on loopback unless only kubelet can reach the node",
    },
    stream_server_port: {
      type: 'number',
      default: 0,
      doc: "port of the streaming server; 0 picks a free one at start (containerd's default), which the URLs carry",
    },
    stream_idle_timeout_s: {
      type: 'number',
      default: 14400,
      doc: "a streaming connection (exec, attach, port-forward) with no traffic for this many seconds is closed (kubelet's and containerd's 4 hours); 0 never",
    },
    stream_token_ttl_s: {
      type: 'number',
      default: 60,
      doc: "how long a streaming URL stays valid before its first use (kubelet's one minute); each URL is single-use whatever this says",
    },
  },
};

export interface CriConfig {
  enabled: boolean;
  /** Empty: the daemon puts the socket in its state dir. */
  address: string;
  /** The network pod sandboxes join; empty: the default bridge network. */
  network: string;
  streaming: { address: string; port: number; idleTimeoutMs: number; tokenTtlMs: number };
}

export function criConfig(v: SectionValues): CriConfig {
  const port = v.stream_server_port as number;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw berthError('InvalidArgument', `config: "cri.stream_server_port" must be a port number (0-65535), not ${port}`);
  for (const key of ['stream_idle_timeout_s', 'stream_token_ttl_s']) {
    const n = v[key] as number;
    if (!Number.isFinite(n) || n < 0) throw berthError('InvalidArgument', `config: "cri.${key}" must be a number of seconds, not ${n}`);
  }
  return {
    enabled: v.enabled as boolean,
    address: v.address as string,
    network: v.network as string,
    streaming: {
      address: v.stream_server_address as string,
      port,
      idleTimeoutMs: (v.stream_idle_timeout_s as number) * 1000,
      tokenTtlMs: (v.stream_token_ttl_s as number) * 1000,
    },
  };
}
