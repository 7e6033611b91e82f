import { t } from '../../core/schema.ts';

/**
 * The native API's request bodies as schemas, checked before a route reads
 * a field (`req.json(schema)`): a wrong type or a value out of range is a
 * 400 naming the field, never a JavaScript error from deep in a service.
 */

/** Linux's HOST_NAME_MAX: sethostname(2) refuses more. */
const HOSTNAME_MAX = 64;

const strings = t.strings();
const stringMap = t.map(t.string());
const port = t.int({ min: 0, max: 65535 });

export const resourcesSchema = t.object({
  memory: t.int({ min: 0 }),
  memorySwap: t.int({ min: -1 }),
  nanoCpus: t.int({ min: 0 }),
  cpuShares: t.int({ min: 0 }),
  cpuQuota: t.int({ min: -1 }),
  cpuPeriod: t.int({ min: 0, max: 1_000_000 }),
  cpusetCpus: t.string(),
  pidsLimit: t.int(),
});

export const restartPolicySchema = t.object({ name: t.string({ oneOf: ['', 'no', 'always', 'on-failure', 'unless-stopped'] }), maximumRetryCount: t.int({ min: 0 }) });

const consoleSize = t.object({ height: port, width: port });

/** A ContainerConfig (core/containers.ts): `POST /containers/create` and `/containers/run`. */
export const containerConfigSchema = t.object({
  image: t.string(),
  name: t.string(),
  entrypoint: strings,
  cmd: strings,
  env: strings,
  workingDir: t.string(),
  user: t.string(),
  groupAdd: strings,
  hostname: t.string({ maxLength: HOSTNAME_MAX }),
  domainname: t.string({ maxLength: 255 }),
  tty: t.boolean(),
  consoleSize,
  openStdin: t.boolean(),
  stdinOnce: t.boolean(),
  labels: stringMap,
  stopSignal: t.string(),
  stopTimeout: t.int({ min: 0 }),
  init: t.boolean(),
  readOnlyRootfs: t.boolean(),
  privileged: t.boolean(),
  capAdd: strings,
  capDrop: strings,
  seccompProfile: t.string(),
  noNewPrivileges: t.boolean(),
  mounts: t.array(t.object({ type: t.string({ oneOf: ['bind', 'volume', 'tmpfs'] }), source: t.string(), target: t.string(), readOnly: t.boolean(), options: strings })),
  tmpfs: stringMap,
  shmSize: t.int({ min: 0 }),
  resources: resourcesSchema,
  ulimits: t.array(t.object({ name: t.string(), soft: t.int(), hard: t.int() })),
  restartPolicy: restartPolicySchema,
  autoRemove: t.boolean(),
  network: t.object({
    mode: t.string(),
    aliases: strings,
    ports: t.array(t.object({ hostIp: t.string(), hostPort: port, containerPort: t.int({ min: 1, max: 65535 }), protocol: t.string({ oneOf: ['tcp', 'udp', 'sctp'] }) })),
    publishAll: t.boolean(),
    dns: strings,
    dnsSearch: strings,
    dnsOptions: strings,
    extraHosts: strings,
    macAddress: t.string(),
    ipAddress: t.string(),
    extraNetworks: t.array(t.object({ network: t.string(), aliases: strings, ipAddress: t.string() })),
  }),
  sharedNamespaces: t.object({ network: t.string(), ipc: t.string(), pid: t.string(), uts: t.string() }),
  pidMode: t.string(),
  ipcMode: t.string(),
  utsMode: t.string(),
  sysctls: stringMap,
  devices: t.array(t.object({ pathOnHost: t.string(), pathInContainer: t.string(), permissions: t.string() })),
  exposedPorts: strings,
  volumesFrom: strings,
  healthcheck: t.object({ Test: strings, Interval: t.int({ min: 0 }), Timeout: t.int({ min: 0 }), StartPeriod: t.int({ min: 0 }), Retries: t.int({ min: 0 }) }),
  logDriver: t.string({ oneOf: ['json-file', 'cri'] }),
  logPath: t.string(),
  logOpts: t.object({ maxSize: t.int({ min: 0 }), maxFiles: t.int({ min: 1 }) }),
  annotations: stringMap,
  runtime: t.string(),
});

/** `POST /containers/{id}/update`. */
export const updateSchema = t.object({ resources: resourcesSchema, restartPolicy: restartPolicySchema });

/** `POST /containers/{id}/exec`: an ExecConfig. */
export const execSchema = t.object({ cmd: strings, env: strings, workingDir: t.string(), user: t.string(), tty: t.boolean(), consoleSize, attachStdin: t.boolean(), privileged: t.boolean() });

export const volumeCreateSchema = t.object({ name: t.string(), driver: t.string(), labels: stringMap, options: stringMap });
export const tagSchema = t.object({ source: t.string(), target: t.string() });
export const loginSchema = t.object({ serveraddress: t.string(), username: t.string(), password: t.string() });
export const logoutSchema = t.object({ serveraddress: t.string() });
