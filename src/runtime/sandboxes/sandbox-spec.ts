import type { SandboxRecord } from '../../metadata/sandboxes.ts';
import type { SetupResult } from '../../network/types.ts';
import type { Device, NamespaceType, Seccomp, Spec } from '../oci/oci-types.ts';
import { buildSpec } from '../oci/spec.ts';

/** Where the pause binary sits in the sandbox rootfs. */
export const PAUSE_IN_ROOTFS = 'pause';

/**
 * The OCI spec of a sandbox's pause process: buildSpec's defaults (docker's
 * capabilities, seccomp profile, masked paths) on the shared read-only
 * rootfs, with the pod's hostname and namespaces. The node's network
 * brings the node's uts namespace with it, as in containerd; a pod pid
 * namespace (`pod` or `container`) is the pause process's own, where it is
 * pid 1 and reaps. The pod's sysctls are set by runc as it creates the
 * pause process in the pod's namespaces, so they hold for every container
 * that joins them; buildSpec refuses those that are not the pod's own. A
 * privileged pod's pause process is privileged too (every capability, no
 * seccomp, the host's devices), as in containerd. The pod's declared
 * resources travel as containerd's annotations, for runtimes that size a
 * VM by them. Pure, like buildSpec.
 */
export function sandboxSpec(input: {
  rec: SandboxRecord;
  /** The network as far as the spec needs it: a started setup's netns, hostname and files. */
  net: Omit<SetupResult, 'interfaces' | 'ports'>;
  rootfs: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  cgroupsPath: string;
  /** What berthd holds (what "every capability" means), the host's devices for a privileged pod, a Localhost profile. */
  host?: { capabilities?: readonly string[]; devices?: Device[]; seccompProfile?: Seccomp };
}): Spec {
  const { rec, net } = input;
  const hostNet = rec.namespaces.network === 'node';
  const hostNamespaces: NamespaceType[] = [];
  if (hostNet) hostNamespaces.push('network', 'uts');
  if (rec.namespaces.pid === 'node') hostNamespaces.push('pid');
  if (rec.namespaces.ipc === 'node') hostNamespaces.push('ipc');
  const seccomp = rec.seccomp === 'unconfined' ? 'unconfined' : rec.seccomp?.startsWith('localhost/') ? rec.seccomp.slice('localhost/'.length) : undefined;
  const spec = buildSpec({
    image: {},
    config: {
      image: '',
      cmd: [`/${PAUSE_IN_ROOTFS}`],
      readOnlyRootfs: true,
      ...(hostNet ? {} : { hostname: net.hostname }),
      network: { mode: hostNet ? 'host' : rec.network },
      ...(rec.namespaces.ipc === 'node' ? { ipcMode: 'host' } : {}),
      privileged: !!rec.privileged,
      sysctls: rec.sysctls,
      seccompProfile: seccomp,
      annotations: sandboxAnnotations(rec),
    },
    user: input.user,
    rootfs: input.rootfs,
    etcFiles: { hosts: net.hostsPath, resolvConf: net.resolvConfPath, hostname: net.hostnamePath },
    host: {
      ...input.host,
      hostname: net.hostname,
      cgroupsPath: input.cgroupsPath,
      namespacePaths: net.netnsPath ? { network: net.netnsPath } : {},
      hostNamespaces,
    },
  });
  if (spec.linux.seccomp && !seccomp) spec.linux.seccomp = nativeArchOnly(spec.linux.seccomp);
  return spec;
}

/**
 * The default profile narrowed to the host's own architecture (the first
 * the profile lists). The pause process is one static binary of ours, built
 * for the host, that never makes a compat (32-bit) syscall; containers get
 * their own filter, never this one. A system call of another architecture
 * then matches no architecture of the filter and is refused, which is
 * stricter than docker's profile, and runc compiles the filter in about a
 * third of the time: libseccomp builds one filter per architecture listed,
 * and that compile was the largest part of the pause process's create.
 */
function nativeArchOnly(profile: Seccomp): Seccomp {
  return profile.architectures?.length ? { ...profile, architectures: profile.architectures.slice(0, 1) } : profile;
}

/** containerd's annotations on a sandbox's spec (pkg/cri/annotations), the pod's resources among them. */
export function sandboxAnnotations(rec: SandboxRecord): Record<string, string> {
  const a: Record<string, string> = {
    'io.kubernetes.cri.container-type': 'sandbox',
    'io.kubernetes.cri.sandbox-id': rec.id,
    'io.kubernetes.cri.sandbox-name': rec.name,
    'io.kubernetes.cri.sandbox-namespace': rec.podNamespace,
    'io.kubernetes.cri.sandbox-uid': rec.uid,
  };
  if (rec.logDirectory) a['io.kubernetes.cri.sandbox-log-directory'] = rec.logDirectory;
  const r = rec.resources;
  if (r?.cpuPeriod) a['io.kubernetes.cri.sandbox-cpu-period'] = String(r.cpuPeriod);
  if (r?.cpuQuota) a['io.kubernetes.cri.sandbox-cpu-quota'] = String(r.cpuQuota);
  if (r?.cpuShares) a['io.kubernetes.cri.sandbox-cpu-shares'] = String(r.cpuShares);
  if (r?.memoryLimitInBytes) a['io.kubernetes.cri.sandbox-memory'] = String(r.memoryLimitInBytes);
  return a;
}
