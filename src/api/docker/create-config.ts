import type { ContainerConfig, MountSpec, NetworkAttachment, PortMapping, Resources, RestartPolicy } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';

/**
 * docker's ContainerCreate body (Config with HostConfig and
 * NetworkingConfig) as berth's ContainerConfig. Pure: no I/O, so every
 * field's mapping is tested without a daemon. Fields berth has no use for
 * are ignored, as dockerd ignores the ones its platform lacks; a value
 * berth cannot honour is InvalidArgument.
 */
export interface DockerCreateBody {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | string | null;
  Entrypoint?: string[] | string | null;
  Image?: string;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, object> | null;
  StopSignal?: string;
  StopTimeout?: number | null;
  Healthcheck?: ContainerConfig['healthcheck'] | null;
  HostConfig?: DockerHostConfig | null;
  NetworkingConfig?: { EndpointsConfig?: Record<string, { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null; MacAddress?: string } | null> | null } | null;
}

export interface DockerHostConfig {
  Binds?: string[] | null;
  Mounts?: Array<{ Type?: string; Source?: string; Target?: string; ReadOnly?: boolean }> | null;
  Tmpfs?: Record<string, string> | null;
  NetworkMode?: string;
  PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
  PublishAllPorts?: boolean;
  Dns?: string[] | null;
  DnsSearch?: string[] | null;
  DnsOptions?: string[] | null;
  ExtraHosts?: string[] | null;
  AutoRemove?: boolean;
  RestartPolicy?: { Name?: string; MaximumRetryCount?: number } | null;
  Memory?: number;
  MemorySwap?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  CpusetCpus?: string;
  PidsLimit?: number | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  Privileged?: boolean;
  ReadonlyRootfs?: boolean;
  Init?: boolean | null;
  ShmSize?: number;
  GroupAdd?: string[] | null;
  Sysctls?: Record<string, string> | null;
  Ulimits?: Array<{ Name: string; Soft: number; Hard: number }> | null;
  Runtime?: string;
  ConsoleSize?: [number, number] | null;
  SecurityOpt?: string[] | null;
  PidMode?: string;
  IpcMode?: string;
  UTSMode?: string;
}

const nonEmpty = <T>(a: T[] | null | undefined): a is T[] => Array.isArray(a) && a.length > 0;
const asList = (v: string[] | string | null | undefined): string[] | undefined => (v === null || v === undefined ? undefined : typeof v === 'string' ? [v] : v);

export function containerConfigOf(body: DockerCreateBody, name?: string): ContainerConfig {
  if (!body || typeof body !== 'object') throw berthError('InvalidArgument', 'config cannot be empty in order to create a container');
  if (!body.Image) throw berthError('InvalidArgument', 'no image was specified: Config.Image is required');
  const h = body.HostConfig ?? {};
  const c: ContainerConfig = { image: body.Image };
  if (name) c.name = name;
  const cmd = asList(body.Cmd);
  if (cmd?.length) c.cmd = cmd;
  // docker's CLI sends Entrypoint [""] for --entrypoint "": clear the image's.
  const entrypoint = asList(body.Entrypoint);
  if (entrypoint) c.entrypoint = entrypoint.length === 1 && entrypoint[0] === '' ? [] : entrypoint;
  if (nonEmpty(body.Env)) c.env = body.Env;
  if (body.WorkingDir) c.workingDir = body.WorkingDir;
  if (body.User) c.user = body.User;
  if (body.Hostname) c.hostname = body.Hostname;
  if (body.Domainname) c.domainname = body.Domainname;
  if (body.Tty) c.tty = true;
  if (body.OpenStdin) c.openStdin = true;
  if (body.StdinOnce) c.stdinOnce = true;
  if (body.Labels && Object.keys(body.Labels).length) c.labels = body.Labels;
  if (body.StopSignal) c.stopSignal = body.StopSignal;
  if (typeof body.StopTimeout === 'number') c.stopTimeout = body.StopTimeout;
  if (body.Healthcheck) c.healthcheck = body.Healthcheck;
  if (body.ExposedPorts && Object.keys(body.ExposedPorts).length) c.exposedPorts = Object.keys(body.ExposedPorts);
  if (h.ConsoleSize && h.ConsoleSize[0] > 0 && h.ConsoleSize[1] > 0) c.consoleSize = { height: h.ConsoleSize[0], width: h.ConsoleSize[1] };

  const mounts = [...(h.Binds ?? []).map(parseBind), ...(h.Mounts ?? []).map(mountOf)];
  if (mounts.length) c.mounts = mounts;
  if (h.Tmpfs && Object.keys(h.Tmpfs).length) c.tmpfs = h.Tmpfs;
  const network = networkOf(body, h);
  if (network) c.network = network;
  if (h.AutoRemove) c.autoRemove = true;
  const restart = restartOf(h.RestartPolicy);
  if (restart) {
    if (c.autoRemove && restart.name !== 'no') throw berthError('InvalidArgument', "can't create 'AutoRemove' container with restart policy");
    c.restartPolicy = restart;
  }
  const resources = resourcesOf(h);
  if (resources) c.resources = resources;
  if (nonEmpty(h.CapAdd)) c.capAdd = h.CapAdd;
  if (nonEmpty(h.CapDrop)) c.capDrop = h.CapDrop;
  if (h.Privileged) c.privileged = true;
  if (h.ReadonlyRootfs) c.readOnlyRootfs = true;
  if (h.Init) c.init = true;
  if (h.ShmSize) c.shmSize = h.ShmSize;
  if (nonEmpty(h.GroupAdd)) c.groupAdd = h.GroupAdd;
  if (h.Sysctls && Object.keys(h.Sysctls).length) c.sysctls = h.Sysctls;
  if (nonEmpty(h.Ulimits)) c.ulimits = h.Ulimits.map((u) => ({ name: u.Name, soft: u.Soft, hard: u.Hard }));
  if (h.Runtime) c.runtime = h.Runtime;
  if (h.PidMode) c.pidMode = h.PidMode;
  if (h.IpcMode === 'host' || h.IpcMode?.startsWith('container:')) c.ipcMode = h.IpcMode;
  if (h.UTSMode) c.utsMode = h.UTSMode;
  for (const opt of h.SecurityOpt ?? []) {
    const [key, value] = opt.includes('=') ? [opt.slice(0, opt.indexOf('=')), opt.slice(opt.indexOf('=') + 1)] : opt.split(':');
    if (key === 'no-new-privileges') c.noNewPrivileges = value === undefined || value === 'true';
    else if (key === 'seccomp') c.seccompProfile = value;
    else throw berthError('InvalidArgument', `invalid --security-opt: "${opt}" is not supported by berth`);
  }
  return c;
}

/** dockerd's Binds: `SOURCE:TARGET[:MODES]`; a source without a slash names a volume. */
export function parseBind(bind: string): MountSpec {
  const parts = bind.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[1]) throw berthError('InvalidArgument', `invalid volume specification: '${bind}'`);
  const [source, target, modes = ''] = parts;
  if (!target.startsWith('/')) throw berthError('InvalidArgument', `invalid volume specification: '${bind}': mount path must be absolute`);
  const flags = modes ? modes.split(',') : [];
  const m: MountSpec = { type: source.startsWith('/') ? 'bind' : 'volume', target };
  if (source) m.source = source;
  if (flags.includes('ro')) m.readOnly = true;
  const options = flags.filter((f) => !['ro', 'rw', 'z', 'Z', 'consistent', 'cached', 'delegated', 'nocopy'].includes(f));
  if (options.length) m.options = options;
  return m;
}

function mountOf(m: { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean }): MountSpec {
  const type = m.Type ?? 'volume';
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw berthError('InvalidArgument', `mount type "${type}" is not supported by berth`);
  if (!m.Target?.startsWith('/')) throw berthError('InvalidArgument', `invalid mount config: mount path must be absolute: "${m.Target ?? ''}"`);
  const out: MountSpec = { type, target: m.Target };
  if (m.Source) out.source = m.Source;
  if (m.ReadOnly) out.readOnly = true;
  return out;
}

function networkOf(body: DockerCreateBody, h: DockerHostConfig): NetworkAttachment | undefined {
  const mode = !h.NetworkMode || h.NetworkMode === 'default' ? 'bridge' : h.NetworkMode;
  const n: NetworkAttachment = { mode };
  const ports: PortMapping[] = [];
  for (const [key, bindings] of Object.entries(h.PortBindings ?? {})) {
    const [portText, proto = 'tcp'] = key.split('/');
    const containerPort = Number(portText);
    if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535 || (proto !== 'tcp' && proto !== 'udp')) {
      throw berthError('InvalidArgument', `invalid port specification: "${key}"`);
    }
    for (const b of bindings?.length ? bindings : [{}]) {
      const hostPort = b.HostPort ? Number(b.HostPort) : 0;
      if (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) throw berthError('InvalidArgument', `invalid port specification: "${b.HostPort}"`);
      ports.push({ containerPort, hostPort, protocol: proto, ...(b.HostIp ? { hostIp: b.HostIp } : {}) });
    }
  }
  if (ports.length) n.ports = ports;
  if (h.PublishAllPorts) n.publishAll = true;
  if (nonEmpty(h.Dns)) n.dns = h.Dns;
  if (nonEmpty(h.DnsSearch)) n.dnsSearch = h.DnsSearch;
  if (nonEmpty(h.DnsOptions)) n.dnsOptions = h.DnsOptions;
  if (nonEmpty(h.ExtraHosts)) n.extraHosts = h.ExtraHosts;
  const endpoint = body.NetworkingConfig?.EndpointsConfig?.[h.NetworkMode ?? ''] ?? undefined;
  if (nonEmpty(endpoint?.Aliases)) n.aliases = endpoint.Aliases;
  if (endpoint?.IPAMConfig?.IPv4Address) n.ipAddress = endpoint.IPAMConfig.IPv4Address;
  if (endpoint?.MacAddress) n.macAddress = endpoint.MacAddress;
  if ((mode === 'host' || mode === 'none' || mode.startsWith('container:')) && (n.ports || n.publishAll)) {
    throw berthError('InvalidArgument', `conflicting options: port publishing and the ${mode.split(':')[0]} network mode`);
  }
  return Object.keys(n).length > 1 || mode !== 'bridge' ? n : undefined;
}

function restartOf(p: DockerHostConfig['RestartPolicy']): RestartPolicy | undefined {
  if (!p?.Name) return undefined;
  if (!['no', 'always', 'on-failure', 'unless-stopped'].includes(p.Name)) throw berthError('InvalidArgument', `invalid restart policy '${p.Name}'`);
  const r: RestartPolicy = { name: p.Name as RestartPolicy['name'] };
  if (p.MaximumRetryCount) {
    if (p.Name !== 'on-failure') throw berthError('InvalidArgument', `invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    r.maximumRetryCount = p.MaximumRetryCount;
  }
  return r;
}

function resourcesOf(h: DockerHostConfig): Resources | undefined {
  const r: Resources = {};
  if (h.Memory) r.memory = h.Memory;
  if (h.MemorySwap) r.memorySwap = h.MemorySwap;
  if (h.NanoCpus) r.nanoCpus = h.NanoCpus;
  if (h.CpuShares) r.cpuShares = h.CpuShares;
  if (h.CpuQuota) r.cpuQuota = h.CpuQuota;
  if (h.CpuPeriod) r.cpuPeriod = h.CpuPeriod;
  if (h.CpusetCpus) r.cpusetCpus = h.CpusetCpus;
  if (h.PidsLimit && h.PidsLimit > 0) r.pidsLimit = h.PidsLimit;
  if (r.nanoCpus && (r.cpuQuota || r.cpuPeriod)) throw berthError('InvalidArgument', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  return Object.keys(r).length ? r : undefined;
}
