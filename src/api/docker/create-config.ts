import type { ContainerConfig, DeviceMapping, MountSpec, NetworkAttachment, PortMapping, Resources, RestartPolicy } from '../../core/containers.ts';
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
  NetworkingConfig?: { EndpointsConfig?: Record<string, DockerEndpointConfig | null> | null } | null;
}

export interface DockerEndpointConfig {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
  MacAddress?: string;
}

/** One entry of HostConfig.Mounts, with the options of its type. */
export interface DockerMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string } | null;
  VolumeOptions?: { NoCopy?: boolean } | null;
  /** SizeBytes in bytes; Mode a file mode as a number (0o1777 = 1023). */
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface DockerHostConfig {
  Binds?: string[] | null;
  Mounts?: DockerMount[] | null;
  Devices?: Array<{ PathOnHost?: string; PathInContainer?: string; CgroupPermissions?: string }> | null;
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
  if (nonEmpty(h.Devices)) c.devices = h.Devices.map(deviceOf);
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

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/** A HostConfig.Mounts entry; its type's options become OCI mount options, as the berth CLI's --mount makes them. */
function mountOf(m: DockerMount): MountSpec {
  const type = m.Type ?? 'volume';
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw berthError('InvalidArgument', `mount type "${type}" is not supported by berth`);
  if (!m.Target?.startsWith('/')) throw berthError('InvalidArgument', `invalid mount config for type "${type}": invalid mount path: '${m.Target ?? ''}' mount path must be absolute`);
  const wrong = (field: string, want: string) => {
    throw berthError('InvalidArgument', `invalid mount config for type "${type}": ${field} must not be specified (it is for type "${want}")`);
  };
  if (m.BindOptions && type !== 'bind') wrong('BindOptions', 'bind');
  if (m.VolumeOptions && type !== 'volume') wrong('VolumeOptions', 'volume');
  if (m.TmpfsOptions && type !== 'tmpfs') wrong('TmpfsOptions', 'tmpfs');
  if (type === 'tmpfs' && m.Source) throw berthError('InvalidArgument', 'invalid mount config for type "tmpfs": field Source must not be specified');
  const out: MountSpec = { type, target: m.Target };
  if (m.Source) out.source = m.Source;
  if (m.ReadOnly) out.readOnly = true;
  const options: string[] = [];
  const propagation = m.BindOptions?.Propagation;
  if (propagation) {
    if (!PROPAGATIONS.includes(propagation)) throw berthError('InvalidArgument', `invalid mount config for type "bind": invalid propagation mode: ${propagation}`);
    options.push(propagation);
  }
  if (m.VolumeOptions?.NoCopy) options.push('nocopy');
  const size = m.TmpfsOptions?.SizeBytes;
  if (size !== undefined && size !== 0) {
    if (!Number.isInteger(size) || size < 0) throw berthError('InvalidArgument', `invalid mount config for type "tmpfs": invalid size ${size}`);
    options.push(`size=${size}`);
  }
  const mode = m.TmpfsOptions?.Mode;
  if (mode !== undefined && mode !== 0) {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw berthError('InvalidArgument', `invalid mount config for type "tmpfs": invalid mode ${mode}`);
    options.push(`mode=${mode.toString(8)}`);
  }
  if (options.length) out.options = options;
  return out;
}

/** HostConfig.Devices: the path inside defaults to the host's, the permissions to rwm, as dockerd does. */
function deviceOf(d: { PathOnHost?: string; PathInContainer?: string; CgroupPermissions?: string }): DeviceMapping {
  const inside = d.PathInContainer || d.PathOnHost || '';
  const permissions = d.CgroupPermissions || 'rwm';
  if (!d.PathOnHost?.startsWith('/') || !inside.startsWith('/')) throw berthError('InvalidArgument', `invalid device mapping: paths must be absolute: "${d.PathOnHost ?? ''}:${inside}"`);
  if (!/^[rwm]{1,3}$/.test(permissions)) throw berthError('InvalidArgument', `invalid device mode: ${permissions}`);
  return { pathOnHost: d.PathOnHost, pathInContainer: inside, permissions };
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
  const endpoints = Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {});
  const endpoint = endpoints.find(([name]) => name === h.NetworkMode)?.[1] ?? undefined;
  if (nonEmpty(endpoint?.Aliases)) n.aliases = endpoint.Aliases;
  if (endpoint?.IPAMConfig?.IPv4Address) n.ipAddress = endpoint.IPAMConfig.IPv4Address;
  if (endpoint?.MacAddress) n.macAddress = endpoint.MacAddress;
  // API 1.44+ clients (docker run --network a --network b) name every network at create: the others join as connect does.
  const more = endpoints.filter(([name]) => name !== h.NetworkMode && name !== mode);
  if (more.length) {
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) throw berthError('InvalidArgument', `conflicting options: network mode ${mode.split(':')[0]} cannot be combined with other networks`);
    n.extraNetworks = more.map(([network, e]) => ({
      network,
      ...(nonEmpty(e?.Aliases) ? { aliases: e.Aliases } : {}),
      ...(e?.IPAMConfig?.IPv4Address ? { ipAddress: e.IPAMConfig.IPv4Address } : {}),
    }));
  }
  if ((mode === 'host' || mode === 'none' || mode.startsWith('container:')) && (n.ports || n.publishAll)) {
    throw berthError('InvalidArgument', `conflicting options: port publishing and the ${mode.split(':')[0]} network mode`);
  }
  return Object.keys(n).length > 1 || mode !== 'bridge' ? n : undefined;
}

export function restartOf(p: DockerHostConfig['RestartPolicy']): RestartPolicy | undefined {
  if (!p?.Name) return undefined;
  if (!['no', 'always', 'on-failure', 'unless-stopped'].includes(p.Name)) throw berthError('InvalidArgument', `invalid restart policy '${p.Name}'`);
  const r: RestartPolicy = { name: p.Name as RestartPolicy['name'] };
  if (p.MaximumRetryCount) {
    if (p.Name !== 'on-failure') throw berthError('InvalidArgument', `invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    r.maximumRetryCount = p.MaximumRetryCount;
  }
  return r;
}

export function resourcesOf(h: DockerHostConfig): Resources | undefined {
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
