import type { SandboxRecord } from '../../metadata/sandboxes.ts';
import type { SetupResult } from '../../network/types.ts';
import type { NamespaceType, Spec } from '../oci/oci-types.ts';
import { buildSpec } from '../oci/spec.ts';

/** Where the pause binary sits in the sandbox rootfs. */
export const PAUSE_IN_ROOTFS = 'pause';

/**
 * The OCI spec of a sandbox's pause process: buildSpec's defaults (docker's
 * capabilities, seccomp profile, masked paths) on the shared read-only
 * rootfs, with the pod's hostname and namespaces. The node's network
 * brings the node's uts namespace with it, as in containerd; a pod pid
 * namespace (`pod` or `container`) is the pause process's own, where it is
 * pid 1 and reaps. Pure, like buildSpec.
 */
export function sandboxSpec(input: { rec: SandboxRecord; net: SetupResult; rootfs: string; user: { uid: number; gid: number }; cgroupsPath: string }): Spec {
  const { rec, net } = input;
  const hostNet = rec.namespaces.network === 'node';
  const hostNamespaces: NamespaceType[] = [];
  if (hostNet) hostNamespaces.push('network', 'uts');
  if (rec.namespaces.pid === 'node') hostNamespaces.push('pid');
  if (rec.namespaces.ipc === 'node') hostNamespaces.push('ipc');
  return buildSpec({
    image: {},
    config: { image: '', cmd: [`/${PAUSE_IN_ROOTFS}`], readOnlyRootfs: true, ...(hostNet ? {} : { hostname: net.hostname }), network: { mode: hostNet ? 'host' : rec.network } },
    user: input.user,
    rootfs: input.rootfs,
    etcFiles: { hosts: net.hostsPath, resolvConf: net.resolvConfPath, hostname: net.hostnamePath },
    host: {
      hostname: net.hostname,
      cgroupsPath: input.cgroupsPath,
      namespacePaths: net.netnsPath ? { network: net.netnsPath } : {},
      hostNamespaces,
    },
  });
}
