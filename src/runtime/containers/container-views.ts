import type { ContainerListItem, ContainerRecord } from '../../core/containers.ts';
import type { RuntimeState } from './types.ts';

/**
 * Docker-shaped views of a container, shared by every front door: the
 * native API returns them as they are and the Docker API door adds only
 * what is specific to its wire format.
 */

export type { ContainerListItem };
export function commandLine(rec: ContainerRecord, imageCmd?: { Entrypoint?: string[] | null; Cmd?: string[] | null }): string[] {
  const entry = rec.config.entrypoint ?? imageCmd?.Entrypoint ?? [];
  const cmd = rec.config.cmd ?? (rec.config.entrypoint !== undefined ? [] : (imageCmd?.Cmd ?? []));
  return [...(entry ?? []), ...(cmd ?? [])];
}

export function statusText(st: RuntimeState, now = Date.now()): string {
  switch (st.status) {
    case 'running':
      return `Up ${duration(now - Date.parse(st.startedAt ?? new Date(now).toISOString()))}`;
    case 'paused':
      return `Up ${duration(now - Date.parse(st.startedAt ?? new Date(now).toISOString()))} (Paused)`;
    case 'restarting':
      return `Restarting (${st.exitCode ?? 0}) ${duration(now - Date.parse(st.finishedAt ?? new Date(now).toISOString()))} ago`;
    case 'exited':
      return st.finishedAt ? `Exited (${st.exitCode ?? 0}) ${duration(now - Date.parse(st.finishedAt))} ago` : `Exited (${st.exitCode ?? 0})`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

/** docker's units.HumanDuration: seconds and minutes truncate, hours round. */
export function duration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(Math.floor(ms / 3_600_000) / 24 / 365)} years`;
}

export function listItem(rec: ContainerRecord, st: RuntimeState, cmd: string[]): ContainerListItem {
  return {
    Id: rec.id,
    Names: ['/' + rec.name],
    Image: rec.imageName,
    ImageID: rec.imageId,
    Command: cmd.join(' '),
    Created: Math.floor(Date.parse(rec.createdAt) / 1000),
    Ports: (st.network?.ports ?? []).map((p) => ({ IP: p.hostIp || '0.0.0.0', PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol })),
    Labels: rec.labels,
    State: st.status,
    Status: statusText(st),
    Mounts: (rec.config.mounts ?? []).map((m) => ({ Type: m.type, Name: m.type === 'volume' ? m.source : undefined, Source: m.source ?? '', Destination: m.target, RW: !m.readOnly })),
    Namespace: rec.namespace,
  };
}

export function inspectView(rec: ContainerRecord, st: RuntimeState, extra: { cmd: string[]; logPath: string; bundle: string; imageEnv?: string[] }) {
  const cfg = rec.config;
  const running = st.status === 'running' || st.status === 'paused';
  const ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  for (const p of cfg.network?.ports ?? []) ports[`${p.containerPort}/${p.protocol}`] = null;
  for (const p of st.network?.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol}`;
    (ports[key] ??= []).push({ HostIp: p.hostIp || '0.0.0.0', HostPort: String(p.hostPort) });
  }
  const networks: Record<string, unknown> = {};
  for (const i of st.network?.interfaces ?? []) {
    networks[i.network] = { NetworkID: i.networkId, IPAddress: i.ip, IPPrefixLen: i.prefixLen, Gateway: i.gateway, MacAddress: i.mac, Aliases: i.aliases };
  }
  const first = st.network?.interfaces?.[0];
  return {
    Id: rec.id,
    Created: rec.createdAt,
    Path: extra.cmd[0] ?? '',
    Args: extra.cmd.slice(1),
    State: {
      Status: st.status,
      // docker reports a restarting container as running (with no pid).
      Running: running || st.status === 'restarting',
      Paused: st.status === 'paused',
      Restarting: st.status === 'restarting',
      OOMKilled: !!st.oomKilled,
      Dead: st.status === 'dead',
      Pid: running ? (st.pid ?? 0) : 0,
      ExitCode: st.exitCode ?? 0,
      Error: st.error ?? '',
      StartedAt: st.startedAt ?? '0001-01-01T00:00:00Z',
      FinishedAt: st.finishedAt ?? '0001-01-01T00:00:00Z',
    },
    Image: rec.imageId,
    ResolvConfPath: st.network?.resolvConfPath ?? '',
    HostnamePath: st.network?.hostnamePath ?? '',
    HostsPath: st.network?.hostsPath ?? '',
    LogPath: extra.logPath,
    Name: '/' + rec.name,
    RestartCount: st.restartCount ?? 0,
    Driver: rec.snapshotter,
    Platform: 'linux',
    Namespace: rec.namespace,
    HostConfig: {
      Binds: (cfg.mounts ?? []).filter((m) => m.type === 'bind').map((m) => `${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`),
      NetworkMode: cfg.network?.mode ?? 'bridge',
      PidMode: cfg.pidMode ?? '',
      IpcMode: cfg.ipcMode ?? 'private',
      UTSMode: cfg.utsMode ?? '',
      Sysctls: cfg.sysctls ?? null,
      Devices: (cfg.devices ?? []).map((d) => ({ PathOnHost: d.pathOnHost, PathInContainer: d.pathInContainer, CgroupPermissions: d.permissions })),
      PortBindings: Object.fromEntries((cfg.network?.ports ?? []).map((p) => [`${p.containerPort}/${p.protocol}`, [{ HostIp: p.hostIp ?? '', HostPort: p.hostPort ? String(p.hostPort) : '' }]])),
      RestartPolicy: { Name: cfg.restartPolicy?.name ?? 'no', MaximumRetryCount: cfg.restartPolicy?.maximumRetryCount ?? 0 },
      AutoRemove: !!cfg.autoRemove,
      CapAdd: cfg.capAdd ?? null,
      CapDrop: cfg.capDrop ?? null,
      Dns: cfg.network?.dns ?? [],
      DnsSearch: cfg.network?.dnsSearch ?? [],
      ExtraHosts: cfg.network?.extraHosts ?? null,
      Init: cfg.init ?? null,
      Privileged: !!cfg.privileged,
      ReadonlyRootfs: !!cfg.readOnlyRootfs,
      SecurityOpt: [...(cfg.seccompProfile ? [`seccomp=${cfg.seccompProfile}`] : []), ...(cfg.noNewPrivileges ? ['no-new-privileges'] : [])],
      Tmpfs: cfg.tmpfs ?? {},
      ShmSize: cfg.shmSize ?? 67108864,
      Runtime: cfg.runtime ?? 'runc',
      Memory: cfg.resources?.memory ?? 0,
      MemorySwap: cfg.resources?.memorySwap ?? 0,
      NanoCpus: cfg.resources?.nanoCpus ?? 0,
      CpuShares: cfg.resources?.cpuShares ?? 0,
      CpuQuota: cfg.resources?.cpuQuota ?? 0,
      CpuPeriod: cfg.resources?.cpuPeriod ?? 0,
      CpusetCpus: cfg.resources?.cpusetCpus ?? '',
      PidsLimit: cfg.resources?.pidsLimit ?? null,
      Ulimits: (cfg.ulimits ?? []).map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
      LogConfig: { Type: cfg.logDriver ?? 'json-file', Config: cfg.logOpts ? Object.fromEntries(Object.entries(cfg.logOpts).map(([k, v]) => [k === 'maxSize' ? 'max-size' : 'max-file', String(v)])) : {} },
    },
    Mounts: (cfg.mounts ?? []).map((m) => ({ Type: m.type, Name: m.type === 'volume' ? m.source : undefined, Source: m.source ?? '', Destination: m.target, RW: !m.readOnly })),
    Config: {
      Hostname: st.network?.hostname ?? cfg.hostname ?? rec.id.slice(0, 12),
      Domainname: cfg.domainname ?? '',
      User: cfg.user ?? '',
      AttachStdin: !!cfg.openStdin,
      Tty: !!cfg.tty,
      OpenStdin: !!cfg.openStdin,
      StdinOnce: !!cfg.stdinOnce,
      Env: cfg.env ?? extra.imageEnv ?? [],
      Cmd: cfg.cmd ?? null,
      Image: rec.imageName,
      WorkingDir: cfg.workingDir ?? '',
      Entrypoint: cfg.entrypoint ?? null,
      Labels: rec.labels,
      StopSignal: cfg.stopSignal,
      StopTimeout: cfg.stopTimeout,
      ...(cfg.exposedPorts?.length ? { ExposedPorts: Object.fromEntries(cfg.exposedPorts.map((p) => [p, {}])) } : {}),
    },
    NetworkSettings: {
      SandboxKey: st.network?.netnsPath ?? '',
      Ports: ports,
      IPAddress: first?.ip ?? '',
      IPPrefixLen: first?.prefixLen ?? 0,
      Gateway: first?.gateway ?? '',
      MacAddress: first?.mac ?? '',
      Networks: networks,
    },
  };
}
