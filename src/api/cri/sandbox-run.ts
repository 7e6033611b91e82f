import { isIPv4 } from 'node:net';
import type { PortMapping } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';
import type { RunSandboxRequest, SandboxResources } from '../../runtime/sandboxes/sandbox-types.ts';
import type { UnaryHandler } from './types.ts';
import { namespaceMode, type CriNamespaceMode } from './sandbox-view.ts';

/** The CRI's LinuxContainerResources as proto-loader hands it over (int64 as decimal strings). */
export interface CriLinuxResources {
  cpu_period?: string;
  cpu_quota?: string;
  cpu_shares?: string;
  memory_limit_in_bytes?: string;
  memory_swap_limit_in_bytes?: string;
  cpuset_cpus?: string;
  cpuset_mems?: string;
  hugepage_limits?: Array<{ page_size?: string; limit?: string }>;
  unified?: Record<string, string>;
}

interface CriSecurityProfile {
  profile_type?: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref?: string;
}

/** The RunPodSandboxRequest fields berth reads. */
export interface RunPodSandboxRequest {
  config?: {
    metadata?: { name?: string; uid?: string; namespace?: string; attempt?: number };
    hostname?: string;
    log_directory?: string;
    dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
    port_mappings?: Array<{ protocol?: 'TCP' | 'UDP' | 'SCTP'; container_port?: number; host_port?: number; host_ip?: string }>;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    linux?: {
      cgroup_parent?: string;
      sysctls?: Record<string, string>;
      overhead?: CriLinuxResources | null;
      resources?: CriLinuxResources | null;
      security_context?: {
        namespace_options?: { network?: CriNamespaceMode; pid?: CriNamespaceMode; ipc?: CriNamespaceMode; userns_options?: { mode?: CriNamespaceMode } | null } | null;
        run_as_user?: { value: string } | null;
        run_as_group?: { value: string } | null;
        readonly_rootfs?: boolean;
        supplemental_groups?: string[];
        privileged?: boolean;
        seccomp?: CriSecurityProfile | null;
        seccomp_profile_path?: string;
      } | null;
    } | null;
  };
  runtime_handler?: string;
}

/**
 * RunPodSandbox: the pod's network namespace on the CRI network, its host
 * ports, and its pause process, ready when this answers. A second sandbox
 * for the same pod metadata is ALREADY_EXISTS, as containerd reserves the
 * name. Every field is checked here, before anything is made; a bad one
 * is INVALID_ARGUMENT naming it.
 */
export const runPodSandbox: UnaryHandler<RunPodSandboxRequest, object> = async (ctx, req, deps) => {
  const sb = await deps.sandboxes.run(ctx, sandboxRequest(req));
  return { pod_sandbox_id: sb.id };
};

/** The sandbox service's request for a RunPodSandboxRequest; throws InvalidArgument naming the field at fault. */
export function sandboxRequest(req: RunPodSandboxRequest): RunSandboxRequest {
  const cfg = req.config;
  if (!cfg?.metadata) throw berthError('InvalidArgument', 'pod sandbox config must include metadata');
  // Runtime classes are not configurable yet: only the default handler exists, and kubelet must hear of any other.
  if (req.runtime_handler) throw berthError('InvalidArgument', `no runtime for "${req.runtime_handler}" is configured`);
  const linux = cfg.linux ?? undefined;
  const sc = linux?.security_context ?? undefined;
  const nso = sc?.namespace_options ?? undefined;
  const userns = nso?.userns_options?.mode;
  if (userns && userns !== 'NODE') throw berthError('InvalidArgument', `linux.security_context.namespace_options.userns_options: mode ${userns} is not supported (user namespaces are not; NODE is)`);
  return {
    name: cfg.metadata.name ?? '',
    uid: cfg.metadata.uid ?? '',
    podNamespace: cfg.metadata.namespace ?? '',
    attempt: cfg.metadata.attempt ?? 0,
    hostname: cfg.hostname,
    labels: cfg.labels,
    annotations: cfg.annotations,
    namespaces: { network: namespaceMode('network', nso?.network), pid: namespaceMode('pid', nso?.pid), ipc: namespaceMode('ipc', nso?.ipc) },
    dns: cfg.dns_config,
    cgroupParent: linux?.cgroup_parent || undefined,
    runAsUser: sc?.run_as_user ? id('linux.security_context.run_as_user', sc.run_as_user.value) : undefined,
    runAsGroup: sc?.run_as_group ? id('linux.security_context.run_as_group', sc.run_as_group.value) : undefined,
    supplementalGroups: sc?.supplemental_groups?.length ? sc.supplemental_groups.map((g, i) => id(`linux.security_context.supplemental_groups[${i}]`, g)) : undefined,
    privileged: !!sc?.privileged,
    seccomp: seccomp(sc?.seccomp ?? undefined, sc?.seccomp_profile_path ?? ''),
    sysctls: linux?.sysctls && Object.keys(linux.sysctls).length ? linux.sysctls : undefined,
    ports: ports(cfg.port_mappings ?? []),
    logDirectory: cfg.log_directory || undefined,
    overhead: resources('linux.overhead', linux?.overhead ?? undefined),
    resources: resources('linux.resources', linux?.resources ?? undefined),
  };
}

/** A uid or gid: 0 to 2^32-2, as the kernel takes them. */
function id(field: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xfffffffe) throw berthError('InvalidArgument', `${field}: ${value} is not a valid id`);
  return n;
}

/** The seccomp field wins over the deprecated path (`runtime/default`, `docker/default`, `unconfined`, `localhost/<path>`), as in containerd. */
function seccomp(profile: CriSecurityProfile | undefined, legacy: string): RunSandboxRequest['seccomp'] {
  const field = 'linux.security_context.seccomp';
  if (profile) {
    switch (profile.profile_type ?? 'RuntimeDefault') {
      case 'RuntimeDefault':
        return { type: 'runtime/default' };
      case 'Unconfined':
        return { type: 'unconfined' };
      case 'Localhost':
        if (!profile.localhost_ref?.startsWith('/')) throw berthError('InvalidArgument', `${field}: a Localhost profile needs an absolute localhost_ref, not "${profile.localhost_ref ?? ''}"`);
        return { type: 'localhost', path: profile.localhost_ref };
    }
    throw berthError('InvalidArgument', `${field}: unknown profile type ${String(profile.profile_type)}`);
  }
  if (!legacy) return undefined;
  if (legacy === 'runtime/default' || legacy === 'docker/default') return { type: 'runtime/default' };
  if (legacy === 'unconfined') return { type: 'unconfined' };
  if (legacy.startsWith('localhost/') && legacy.length > 'localhost/'.length) return { type: 'localhost', path: legacy.slice('localhost/'.length) };
  throw berthError('InvalidArgument', `linux.security_context.seccomp_profile_path: unknown profile "${legacy}"`);
}

/**
 * kubelet's hostPort mappings: one with host_port 0 only declares a
 * container port and publishes nothing (containerd's CNI skips it). TCP
 * and UDP, on IPv4: berth's pod networks have no IPv6, and its NAT no SCTP.
 */
function ports(mappings: NonNullable<NonNullable<RunPodSandboxRequest['config']>['port_mappings']>): PortMapping[] | undefined {
  const out: PortMapping[] = [];
  mappings.forEach((m, i) => {
    const field = `port_mappings[${i}]`;
    const valid = (p: number | undefined) => Number.isInteger(p) && p! >= 1 && p! <= 65535;
    if (!m.host_port) return;
    if (!valid(m.host_port)) throw berthError('InvalidArgument', `${field}: host_port ${m.host_port} is not a port (1-65535)`);
    if (!valid(m.container_port)) throw berthError('InvalidArgument', `${field}: container_port ${m.container_port ?? 0} is not a port (1-65535)`);
    const protocol = m.protocol ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP') throw berthError('InvalidArgument', `${field}: protocol ${protocol} is not supported (TCP and UDP are)`);
    if (m.host_ip && !isIPv4(m.host_ip)) throw berthError('InvalidArgument', `${field}: host_ip "${m.host_ip}" is not an IPv4 address (pods have IPv4 addresses only)`);
    out.push({ hostIp: m.host_ip || undefined, hostPort: m.host_port!, containerPort: m.container_port!, protocol: protocol === 'UDP' ? 'udp' : 'tcp' });
  });
  return out.length ? out : undefined;
}

/** The CRI's LinuxContainerResources as the sandbox service keeps them; InvalidArgument naming `field` for a value out of range. */
export function resources(field: string, r: CriLinuxResources | undefined): SandboxResources | undefined {
  if (!r) return undefined;
  const num = (name: keyof CriLinuxResources, min = 0): number | undefined => {
    const raw = r[name] as string | undefined;
    if (raw === undefined || raw === '0') return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw berthError('InvalidArgument', `${field}.${name}: ${raw} is out of range`);
    return n;
  };
  const out: SandboxResources = {
    cpuPeriod: num('cpu_period'),
    // -1 is "no limit" for a quota and for swap, as in the cgroup files.
    cpuQuota: num('cpu_quota', -1),
    cpuShares: num('cpu_shares'),
    memoryLimitInBytes: num('memory_limit_in_bytes'),
    memorySwapLimitInBytes: num('memory_swap_limit_in_bytes', -1),
    cpusetCpus: r.cpuset_cpus || undefined,
    cpusetMems: r.cpuset_mems || undefined,
    hugepageLimits: r.hugepage_limits?.length ? r.hugepage_limits.map((h) => ({ pageSize: h.page_size ?? '', limit: Number(h.limit ?? 0) })) : undefined,
    unified: r.unified && Object.keys(r.unified).length ? r.unified : undefined,
  };
  const set = Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as SandboxResources;
  return Object.keys(set).length ? set : undefined;
}
