import { t } from '../../core/schema.ts';

/**
 * The Docker API's request bodies as schemas, checked before a route reads
 * a field (api/http/exchange.ts `json(schema)`), so a wrong type is a 400
 * in dockerd's words and never a JavaScript error. They list the fields
 * berth reads; others pass unchecked, as dockerd ignores what its platform
 * lacks. Ranges are the kernel's and dockerd's: a hostname is at most 64
 * characters (HOST_NAME_MAX), limits and shares are not negative.
 */

/** Linux's HOST_NAME_MAX: sethostname(2) refuses more. */
export const HOSTNAME_MAX = 64;

const u64 = t.int({ min: 0 });
const strings = t.strings();
const stringMap = t.map(t.string());
const cmdLike = t.oneOf(t.strings(), t.string());

export const healthcheckSchema = t.object({
  Test: strings,
  Interval: u64,
  Timeout: u64,
  StartPeriod: u64,
  StartInterval: u64,
  Retries: t.int({ min: 0, go: 'int' }),
});

const portBinding = t.object({ HostIp: t.string(), HostPort: t.string() });

export const hostConfigSchema = t.object(
  {
    Binds: strings,
    Mounts: t.array(t.object({ Type: t.string(), Source: t.string(), Target: t.string(), ReadOnly: t.boolean(), Consistency: t.string(), BindOptions: t.object({}), VolumeOptions: t.object({}), TmpfsOptions: t.object({}) })),
    Tmpfs: stringMap,
    NetworkMode: t.string(),
    PortBindings: t.map(t.array(portBinding)),
    PublishAllPorts: t.boolean(),
    Dns: strings,
    DnsSearch: strings,
    DnsOptions: strings,
    ExtraHosts: strings,
    Links: strings,
    AutoRemove: t.boolean(),
    RestartPolicy: t.object({ Name: t.string(), MaximumRetryCount: t.int({ min: 0, go: 'int' }) }),
    Memory: u64,
    MemoryReservation: u64,
    MemorySwap: t.int({ min: -1 }),
    MemorySwappiness: t.int({ min: -1, max: 100 }),
    NanoCpus: u64,
    CpuShares: u64,
    CpuQuota: t.int({ min: -1 }),
    CpuPeriod: t.int({ min: 0, max: 1_000_000 }),
    CpuRealtimePeriod: u64,
    CpuRealtimeRuntime: u64,
    CpusetCpus: t.string(),
    CpusetMems: t.string(),
    BlkioWeight: t.int({ min: 0, max: 1000, go: 'uint16' }),
    PidsLimit: t.int(),
    OomKillDisable: t.boolean(),
    OomScoreAdj: t.int({ min: -1000, max: 1000, go: 'int' }),
    CapAdd: strings,
    CapDrop: strings,
    Privileged: t.boolean(),
    ReadonlyRootfs: t.boolean(),
    Init: t.boolean(),
    ShmSize: u64,
    GroupAdd: strings,
    Sysctls: stringMap,
    Ulimits: t.array(t.object({ Name: t.string(), Soft: t.int(), Hard: t.int() })),
    Devices: t.array(t.object({ PathOnHost: t.string(), PathInContainer: t.string(), CgroupPermissions: t.string() })),
    Runtime: t.string(),
    ConsoleSize: t.array(t.int({ min: 0, max: 65535, go: 'uint' }), { maxItems: 2 }),
    SecurityOpt: strings,
    PidMode: t.string(),
    IpcMode: t.string(),
    UTSMode: t.string(),
    UsernsMode: t.string(),
    CgroupnsMode: t.string(),
    VolumesFrom: strings,
    LogConfig: t.object({ Type: t.string(), Config: stringMap }),
  },
  { go: 'container.HostConfig' },
);

const endpointSettings = t.object({
  Aliases: strings,
  Links: strings,
  NetworkID: t.string(),
  EndpointID: t.string(),
  MacAddress: t.string(),
  DriverOpts: stringMap,
  IPAMConfig: t.object({ IPv4Address: t.string(), IPv6Address: t.string(), LinkLocalIPs: strings }),
});

export const networkingConfigSchema = t.object({ EndpointsConfig: t.map(endpointSettings) });

/** `POST /containers/create`: Config, with HostConfig and NetworkingConfig. */
export const createBodySchema = t.object(
  {
    Hostname: t.string({ maxLength: HOSTNAME_MAX }),
    Domainname: t.string({ maxLength: 255 }),
    User: t.string(),
    AttachStdin: t.boolean(),
    AttachStdout: t.boolean(),
    AttachStderr: t.boolean(),
    Tty: t.boolean(),
    OpenStdin: t.boolean(),
    StdinOnce: t.boolean(),
    Env: strings,
    Cmd: cmdLike,
    Entrypoint: cmdLike,
    Image: t.string(),
    WorkingDir: t.string(),
    Labels: stringMap,
    ExposedPorts: t.map(t.object({})),
    Volumes: t.map(t.object({})),
    StopSignal: t.string(),
    StopTimeout: t.int({ min: 0, go: 'int' }),
    NetworkDisabled: t.boolean(),
    MacAddress: t.string(),
    Healthcheck: healthcheckSchema,
    HostConfig: hostConfigSchema,
    NetworkingConfig: networkingConfigSchema,
  },
  { go: 'container.CreateRequest' },
);

/** `POST /containers/{id}/exec`. */
export const execCreateSchema = t.object({
  Cmd: strings,
  Env: strings,
  WorkingDir: t.string(),
  User: t.string(),
  Tty: t.boolean(),
  AttachStdin: t.boolean(),
  AttachStdout: t.boolean(),
  AttachStderr: t.boolean(),
  DetachKeys: t.string(),
  Privileged: t.boolean(),
  ConsoleSize: t.array(t.int({ min: 0, max: 65535, go: 'uint' }), { maxItems: 2 }),
});

/** `POST /exec/{id}/start`. */
export const execStartSchema = t.object({ Detach: t.boolean(), Tty: t.boolean(), ConsoleSize: t.array(t.int({ min: 0, max: 65535, go: 'uint' }), { maxItems: 2 }) });

/** `POST /volumes/create`. */
export const volumeCreateSchema = t.object({ Name: t.string(), Driver: t.string(), DriverOpts: stringMap, Labels: stringMap });
export const authSchema = t.object({ username: t.string(), password: t.string(), serveraddress: t.string(), identitytoken: t.string(), email: t.string() });
