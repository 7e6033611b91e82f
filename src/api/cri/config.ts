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
  },
};

export interface CriConfig {
  enabled: boolean;
  /** Empty: the daemon puts the socket in its state dir. */
  address: string;
  /** The network pod sandboxes join; empty: the default bridge network. */
  network: string;
}

export function criConfig(v: SectionValues): CriConfig {
  return { enabled: v.enabled as boolean, address: v.address as string, network: v.network as string };
}
