import path from 'node:path';
import type { ContainerConfig, DeviceMapping, NetworkAttachment, Resources } from '../core/containers.ts';
import { berthError, isBerthError } from '../core/errors.ts';
import { parsePublish } from '../core/ports.ts';
import type { FlagSpec, Parsed } from './flags.ts';
import {
  flagError, isIp, parseAddHost, parseDuration, parseInteger, parseKeyValueFile, parseMount, parseNanoCpus, parseRestart,
  parseSize, parseUlimit, parseVolume,
} from './run-options-parse.ts';

/**
 * The flags of `berth run` and `berth create`, and their translation into a
 * ContainerConfig with docker's rules and messages. Only the CLI's own
 * environment is read (the CLI's variables for a bare `-e KEY`, env and
 * label files, a seccomp profile to check it parses), through `RunOptionsEnv`
 * so tests run without files.
 *
 *   const parsed = parseFlags(argv, RUN_FLAGS, { stopAtPositional: true });
 *   const { config, detach } = toContainerConfig(parsed, { vars: process.env, cwd: process.cwd(), readFile });
 */

export const CREATE_FLAGS: Record<string, FlagSpec> = {
  'add-host': { type: 'list', doc: 'Add a custom host-to-IP mapping (host:ip)' },
  'cap-add': { type: 'list', doc: 'Add Linux capabilities' },
  'cap-drop': { type: 'list', doc: 'Drop Linux capabilities' },
  cidfile: { type: 'string', doc: 'Write the container ID to the file' },
  'cpu-period': { type: 'string', doc: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  'cpu-quota': { type: 'string', doc: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  'cpu-shares': { type: 'string', short: 'c', doc: 'CPU shares (relative weight)' },
  cpus: { type: 'string', doc: 'Number of CPUs' },
  'cpuset-cpus': { type: 'string', doc: 'CPUs in which to allow execution (0-3, 0,1)' },
  device: { type: 'list', doc: 'Add a host device to the container (HOST[:CONTAINER][:rwm])' },
  dns: { type: 'list', doc: 'Set custom DNS servers' },
  'dns-option': { type: 'list', doc: 'Set DNS options' },
  'dns-search': { type: 'list', doc: 'Set custom DNS search domains' },
  domainname: { type: 'string', doc: 'Container NIS domain name' },
  entrypoint: { type: 'string', doc: 'Overwrite the default ENTRYPOINT of the image' },
  env: { type: 'list', short: 'e', doc: 'Set environment variables' },
  'env-file': { type: 'list', doc: 'Read in a file of environment variables' },
  expose: { type: 'list', doc: 'Expose a port or a range of ports' },
  'group-add': { type: 'list', doc: 'Add additional groups to join' },
  'health-cmd': { type: 'string', doc: 'Command to run to check health' },
  'health-interval': { type: 'string', doc: 'Time between running the check (ms|s|m|h) (default 30s)' },
  'health-retries': { type: 'string', doc: 'Consecutive failures needed to report unhealthy' },
  'health-start-period': { type: 'string', doc: 'Start period for the container to initialize before counting retries (ms|s|m|h)' },
  'health-timeout': { type: 'string', doc: 'Maximum time to allow one check to run (ms|s|m|h) (default 30s)' },
  hostname: { type: 'string', short: 'h', doc: 'Container host name' },
  init: { type: 'bool', doc: 'Run an init inside the container that forwards signals and reaps processes' },
  interactive: { type: 'bool', short: 'i', doc: 'Keep STDIN open even if not attached' },
  label: { type: 'list', short: 'l', doc: 'Set meta data on a container' },
  'label-file': { type: 'list', doc: 'Read in a line delimited file of labels' },
  'log-driver': { type: 'string', doc: 'Logging driver for the container (json-file, cri)' },
  'log-opt': { type: 'list', doc: 'Log driver options (max-size, max-file)' },
  memory: { type: 'string', short: 'm', doc: 'Memory limit' },
  'memory-swap': { type: 'string', doc: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  mount: { type: 'list', doc: 'Attach a filesystem mount to the container' },
  name: { type: 'string', doc: 'Assign a name to the container' },
  net: { type: 'string' },
  'no-healthcheck': { type: 'bool', doc: 'Disable any container-specified HEALTHCHECK' },
  network: { type: 'string', doc: 'Connect a container to a network' },
  'network-alias': { type: 'list', doc: 'Add network-scoped alias for the container' },
  pid: { type: 'string', doc: 'PID namespace to use (host, container:NAME)' },
  ipc: { type: 'string', doc: 'IPC mode to use (host, container:NAME, private, shareable)' },
  uts: { type: 'string', doc: 'UTS namespace to use (host)' },
  'pids-limit': { type: 'string', doc: 'Tune container pids limit (set -1 for unlimited)' },
  platform: { type: 'string', doc: 'Set platform if server is multi-platform capable' },
  privileged: { type: 'bool', doc: 'Give extended privileges to this container' },
  publish: { type: 'list', short: 'p', doc: "Publish a container's port(s) to the host" },
  'publish-all': { type: 'bool', short: 'P', doc: 'Publish all exposed ports to random ports' },
  pull: { type: 'string', default: 'missing', doc: 'Pull image before running ("always", "missing", "never")' },
  'read-only': { type: 'bool', doc: "Mount the container's root filesystem as read only" },
  restart: { type: 'string', doc: 'Restart policy to apply when a container exits' },
  rm: { type: 'bool', doc: 'Automatically remove the container when it exits' },
  runtime: { type: 'string', doc: 'Runtime to use for this container' },
  'security-opt': { type: 'list', doc: 'Security Options' },
  'shm-size': { type: 'string', doc: 'Size of /dev/shm' },
  sysctl: { type: 'list', doc: 'Sysctl options (namespaced: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)' },
  'stop-signal': { type: 'string', doc: 'Signal to stop the container' },
  'stop-timeout': { type: 'string', doc: 'Timeout (in seconds) to stop a container' },
  tmpfs: { type: 'list', doc: 'Mount a tmpfs directory' },
  tty: { type: 'bool', short: 't', doc: 'Allocate a pseudo-TTY' },
  ulimit: { type: 'list', doc: 'Ulimit options' },
  user: { type: 'string', short: 'u', doc: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  'volumes-from': { type: 'list', doc: 'Mount volumes from the specified container(s) (CONTAINER[:ro|:rw])' },
  volume: { type: 'list', short: 'v', doc: 'Bind mount a volume' },
  workdir: { type: 'string', short: 'w', doc: 'Working directory inside the container' },
};

export const RUN_FLAGS: Record<string, FlagSpec> = {
  ...CREATE_FLAGS,
  detach: { type: 'bool', short: 'd', doc: 'Run container in background and print container ID' },
};

export interface RunOptionsEnv {
  /** The CLI's environment, for `-e KEY` and bare keys in --env-file. */
  vars: Record<string, string | undefined>;
  /** For relative bind sources ("./data") and files. */
  cwd: string;
  readFile(file: string): string;
}

export interface RunOptions {
  config: ContainerConfig;
  detach: boolean;
  pull: 'missing' | 'always' | 'never';
  platform?: string;
  /** --cidfile: where to write the new container's ID; it must not exist yet. */
  cidfile?: string;
  /** Accepted but ignored options, for the CLI to print as WARNINGs. */
  warnings: string[];
}

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const SIGNAL = /^(SIG)?[A-Z][A-Z0-9+-]*$|^\d+$/;

function label(name: string): string {
  const s = CREATE_FLAGS[name]?.short;
  return s ? `-${s}, --${name}` : `--${name}`;
}

/** Run a value parser, turning its message into docker's flag error. */
function flag<T>(name: string, value: string, parse: (v: string) => T): T {
  try {
    return parse(value);
  } catch (e) {
    if (isBerthError(e)) throw e;
    throw flagError(label(name), value, (e as Error).message);
  }
}

function readFileFor(env: RunOptionsEnv, file: string, what: string): string {
  try {
    return env.readFile(path.resolve(env.cwd, file));
  } catch (e) {
    if (isBerthError(e)) throw berthError('InvalidArgument', `${e.message} (${what})`);
    throw berthError('InvalidArgument', `open ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message} (${what})`);
  }
}

/**
 * The files the options name (`--env-file`, `--label-file`, `--security-opt
 * seccomp=FILE`), read ahead with `read` (the CLI's bounded, non-blocking
 * reader) so that toContainerConfig stays synchronous and pure. A file that
 * could not be read keeps its error for the option that names it.
 */
export async function readNamedFiles(parsed: Parsed, cwd: string, read: (file: string, name: string) => Promise<string>): Promise<(file: string) => string> {
  const list = (k: string) => (parsed.flags[k] as string[] | undefined) ?? [];
  const named = [...list('env-file'), ...list('label-file')];
  for (const opt of list('security-opt')) {
    const m = /^seccomp[=:](.+)$/.exec(opt);
    if (m && m[1] !== 'unconfined') named.push(m[1]);
  }
  const read_ = new Map<string, { text?: string; err?: unknown }>();
  for (const name of named) {
    const file = path.resolve(cwd, name);
    if (read_.has(file)) continue;
    try {
      read_.set(file, { text: await read(file, name) });
    } catch (err) {
      if ((err as { kind?: string }).kind === 'Canceled') throw err;
      read_.set(file, { err });
    }
  }
  return (file) => {
    const got = read_.get(file);
    if (!got) throw berthError('Internal', `${file} was not read ahead`);
    if (got.err !== undefined) throw got.err;
    return got.text!;
  };
}

export function toContainerConfig(parsed: Parsed, env: RunOptionsEnv, command: 'run' | 'create' = 'run'): RunOptions {
  const f = parsed.flags;
  const str = (k: string) => f[k] as string | undefined;
  const list = (k: string) => (f[k] as string[] | undefined) ?? [];
  const bool = (k: string) => f[k] === true;
  const warnings: string[] = [];

  const [image, ...cmd] = parsed.args;
  if (!image) throw berthError('InvalidArgument', `"berth ${command}" requires at least 1 argument.`);
  const config: ContainerConfig = { image };
  if (cmd.length) config.cmd = cmd;

  const name = str('name');
  if (name !== undefined) {
    if (!NAME.test(name)) throw berthError('InvalidArgument', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    config.name = name.replace(/^\//, '');
  }

  // environment: files first, then -e, as docker
  const envOut: string[] = [];
  for (const file of list('env-file')) {
    envOut.push(...parseKeyValueFile(readFileFor(env, file, '--env-file'), file, (k) => (env.vars[k] !== undefined ? `${k}=${env.vars[k]}` : undefined)));
  }
  for (const e of list('env')) {
    if (e.startsWith('=')) throw berthError('InvalidArgument', `invalid environment variable: ${e}`);
    if (e.includes('=')) envOut.push(e);
    else if (env.vars[e] !== undefined) envOut.push(`${e}=${env.vars[e]}`);
  }
  if (envOut.length) config.env = envOut;

  const labels: Record<string, string> = {};
  const addLabel = (l: string) => {
    const eq = l.indexOf('=');
    const k = eq >= 0 ? l.slice(0, eq) : l;
    if (!k) throw berthError('InvalidArgument', `invalid label '${l}': empty name`);
    labels[k] = eq >= 0 ? l.slice(eq + 1) : '';
  };
  for (const file of list('label-file')) for (const l of parseKeyValueFile(readFileFor(env, file, '--label-file'), file, (k) => k)) addLabel(l);
  for (const l of list('label')) addLabel(l);
  if (Object.keys(labels).length) config.labels = labels;

  const workdir = str('workdir');
  if (workdir !== undefined && workdir !== '') {
    if (!workdir.startsWith('/')) throw berthError('InvalidArgument', `the working directory '${workdir}' is invalid, it needs to be an absolute path`);
    config.workingDir = workdir;
  }
  if (str('user')) config.user = str('user');
  if (list('group-add').length) config.groupAdd = list('group-add');
  const entrypoint = str('entrypoint');
  if (entrypoint !== undefined) config.entrypoint = entrypoint === '' ? [] : [entrypoint];
  if (str('hostname')) config.hostname = str('hostname');
  if (str('domainname')) config.domainname = str('domainname');
  if (bool('tty')) config.tty = true;
  if (bool('interactive')) {
    config.openStdin = true;
    // `run -i` attaches stdin: close it for the container when that client goes, as docker's StdinOnce
    if (command === 'run' && !bool('detach')) config.stdinOnce = true;
  }
  if (bool('init')) config.init = true;
  if (bool('read-only')) config.readOnlyRootfs = true;
  if (bool('privileged')) config.privileged = true;
  if (list('cap-add').length) config.capAdd = list('cap-add');
  if (list('cap-drop').length) config.capDrop = list('cap-drop');
  if (bool('rm')) config.autoRemove = true;

  for (const opt of list('security-opt')) parseSecurityOpt(opt, config, warnings, env);

  const mounts = [...list('volume').map((v) => flag('volume', v, (x) => parseVolume(x, env.cwd))), ...list('mount').map((m) => flag('mount', m, parseMount))];
  if (mounts.length) config.mounts = mounts;
  for (const t of list('tmpfs')) {
    const colon = t.indexOf(':');
    const target = colon >= 0 ? t.slice(0, colon) : t;
    if (!target.startsWith('/')) throw flagError('--tmpfs', t, `invalid mount path: '${target}' mount path must be absolute`);
    config.tmpfs = { ...config.tmpfs, [target]: colon >= 0 ? t.slice(colon + 1) : '' };
  }

  const resources = parseResources(str);
  if (Object.keys(resources).length) config.resources = resources;
  const shm = str('shm-size');
  if (shm !== undefined) {
    config.shmSize = flag('shm-size', shm, parseSize);
    if (config.shmSize <= 0) throw flagError('--shm-size', shm, 'SHM size must be greater than 0');
  }
  if (list('ulimit').length) {
    const byName = new Map(list('ulimit').map((u) => flag('ulimit', u, parseUlimit)).map((u) => [u.name, u]));
    config.ulimits = [...byName.values()];
  }

  const restart = str('restart');
  if (restart !== undefined) {
    const policy = flag('restart', restart, parseRestart);
    if (policy.name !== 'no') {
      if (config.autoRemove) throw berthError('InvalidArgument', 'Conflicting options: --restart and --rm');
      config.restartPolicy = policy;
    }
  }

  const stopSignal = str('stop-signal');
  if (stopSignal !== undefined) {
    if (!SIGNAL.test(stopSignal.toUpperCase())) throw berthError('InvalidArgument', `Invalid signal: ${stopSignal}`);
    config.stopSignal = stopSignal;
  }
  const stopTimeout = str('stop-timeout');
  if (stopTimeout !== undefined) config.stopTimeout = flag('stop-timeout', stopTimeout, parseInteger);

  parseLogging(str, list, config);
  if (str('runtime')) config.runtime = str('runtime');

  const network = parseNetwork(str, list, bool);
  if (network) config.network = network;
  parseNamespaceModes(str, config);
  for (const kv of list('sysctl')) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw flagError('--sysctl', kv, `invalid sysctl "${kv}": expected KEY=VALUE`);
    config.sysctls = { ...config.sysctls, [kv.slice(0, eq).trim()]: kv.slice(eq + 1) };
  }
  const devices = list('device').map((d) => flag('device', d, parseDevice));
  if (devices.length) config.devices = devices;
  if (list('volumes-from').length) config.volumesFrom = list('volumes-from');
  parseHealth(str, bool, config);
  const exposed = list('expose').flatMap((e) => flag('expose', e, parseExpose));
  if (exposed.length) config.exposedPorts = [...new Set(exposed)];

  const pull = str('pull') ?? 'missing';
  if (pull !== 'missing' && pull !== 'always' && pull !== 'never') {
    throw berthError('InvalidArgument', `invalid pull option: '${pull}': must be one of "always", "missing" or "never"`);
  }
  const platform = str('platform');
  if (platform !== undefined && !['linux/amd64', 'linux/x86_64', 'linux', 'amd64'].includes(platform.toLowerCase())) {
    throw berthError('InvalidArgument', `platform "${platform}" is not supported: berth runs linux/amd64 containers`);
  }

  const cidfileArg = str('cidfile');
  const cidfile = cidfileArg ? path.resolve(env.cwd, cidfileArg) : undefined;
  return { config, detach: bool('detach'), pull, ...(platform ? { platform } : {}), ...(cidfile ? { cidfile } : {}), warnings };
}

function parseSecurityOpt(opt: string, config: ContainerConfig, warnings: string[], env: RunOptionsEnv): void {
  const sep = opt.search(/[=:]/);
  const key = sep >= 0 ? opt.slice(0, sep) : opt;
  const value = sep >= 0 ? opt.slice(sep + 1) : undefined;
  switch (key) {
    case 'no-new-privileges':
      if (value === undefined || value === 'true') config.noNewPrivileges = true;
      else if (value === 'false') config.noNewPrivileges = false;
      else throw berthError('InvalidArgument', `invalid --security-opt 2: "${opt}"`);
      return;
    case 'seccomp': {
      if (!value) throw berthError('InvalidArgument', `Invalid --security-opt: "${opt}"`);
      if (value === 'unconfined') {
        config.seccompProfile = 'unconfined';
        return;
      }
      const file = path.resolve(env.cwd, value);
      let text: string;
      try {
        text = env.readFile(file);
      } catch (e) {
        throw berthError('InvalidArgument', `opening seccomp profile (${value}) failed: ${(e as Error).message}`);
      }
      try {
        JSON.parse(text);
      } catch (e) {
        throw berthError('InvalidArgument', `seccomp profile (${value}) is not valid JSON: ${(e as Error).message}`);
      }
      // The profile's content travels, as docker's CLI sends it: berthd never opens a path a user names.
      config.seccompProfile = text;
      return;
    }
    case 'apparmor':
    case 'label':
      warnings.push(`--security-opt ${opt} is accepted and ignored: berth applies no ${key === 'label' ? 'SELinux labels' : 'AppArmor profiles'}`);
      return;
    default:
      throw berthError('InvalidArgument', `Invalid --security-opt: "${opt}"`);
  }
}

function parseResources(str: (k: string) => string | undefined): Resources {
  const r: Resources = {};
  const memory = str('memory');
  if (memory !== undefined) r.memory = flag('memory', memory, parseSize);
  const swap = str('memory-swap');
  if (swap !== undefined) r.memorySwap = swap === '-1' ? -1 : flag('memory-swap', swap, parseSize);
  const cpus = str('cpus');
  if (cpus !== undefined) r.nanoCpus = flag('cpus', cpus, parseNanoCpus);
  const shares = str('cpu-shares');
  if (shares !== undefined) r.cpuShares = flag('cpu-shares', shares, parseInteger);
  const period = str('cpu-period');
  if (period !== undefined) r.cpuPeriod = flag('cpu-period', period, parseInteger);
  const quota = str('cpu-quota');
  if (quota !== undefined) r.cpuQuota = flag('cpu-quota', quota, parseInteger);
  if (r.nanoCpus && (r.cpuPeriod || r.cpuQuota)) {
    throw berthError('InvalidArgument', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  }
  const cpuset = str('cpuset-cpus');
  if (cpuset !== undefined) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(cpuset)) throw flagError('--cpuset-cpus', cpuset, `invalid format: ${cpuset}`);
    r.cpusetCpus = cpuset;
  }
  const pids = str('pids-limit');
  if (pids !== undefined) r.pidsLimit = flag('pids-limit', pids, parseInteger);
  return r;
}

function parseLogging(str: (k: string) => string | undefined, list: (k: string) => string[], config: ContainerConfig): void {
  const driver = str('log-driver');
  if (driver !== undefined) {
    if (driver !== 'json-file' && driver !== 'cri') throw berthError('InvalidArgument', `logger: no log driver named '${driver}' is registered`);
    config.logDriver = driver;
  }
  const opts: NonNullable<ContainerConfig['logOpts']> = {};
  for (const o of list('log-opt')) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw berthError('InvalidArgument', `invalid key value pair format in log opts: ${o}`);
    const k = o.slice(0, eq);
    const v = o.slice(eq + 1);
    if (k === 'max-size') opts.maxSize = flag('log-opt', v, parseSize);
    else if (k === 'max-file') {
      opts.maxFiles = flag('log-opt', v, parseInteger);
      if (opts.maxFiles < 1) throw berthError('InvalidArgument', 'max-file cannot be less than 1');
    } else throw berthError('InvalidArgument', `unknown log opt '${k}' for ${config.logDriver ?? 'json-file'} log driver`);
  }
  if (Object.keys(opts).length) config.logOpts = opts;
}

/** docker's --device: HOST[:CONTAINER][:PERMISSIONS], permissions any of r, w, m (default rwm). */
export function parseDevice(spec: string): DeviceMapping {
  const parts = spec.split(':');
  if (parts.length > 3 || !parts[0]) throw new Error(`invalid device specification: ${spec}`);
  const isPerms = (p: string) => /^[rwm]{1,3}$/.test(p);
  let permissions = 'rwm';
  let inside = parts[0];
  if (parts.length === 3) {
    if (!isPerms(parts[2])) throw new Error(`invalid device mode: ${parts[2]}`);
    [inside, permissions] = [parts[1], parts[2]];
  } else if (parts.length === 2) {
    if (isPerms(parts[1])) permissions = parts[1];
    else inside = parts[1];
  }
  if (!parts[0].startsWith('/') || !inside.startsWith('/')) throw new Error(`device paths must be absolute: ${spec}`);
  return { pathOnHost: parts[0], pathInContainer: inside, permissions };
}

/** docker's --expose: PORT[/PROTO] or a range START-END[/PROTO]; the protocol defaults to tcp. */
export function parseExpose(spec: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(spec);
  if (!m) throw new Error(`invalid range format for --expose: ${spec}`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || to < from) throw new Error(`invalid range format for --expose: ${spec}`);
  const proto = m[3] ?? 'tcp';
  return Array.from({ length: to - from + 1 }, (_, i) => `${from + i}/${proto}`);
}

/** --health-* and --no-healthcheck, as docker: durations must be 0 or at least 1ms, and --no-healthcheck stands alone. */
function parseHealth(str: (k: string) => string | undefined, bool: (k: string) => boolean, config: ContainerConfig): void {
  const hc: NonNullable<ContainerConfig['healthcheck']> = {};
  const cmd = str('health-cmd');
  if (cmd) hc.Test = ['CMD-SHELL', cmd];
  const duration = (name: string, key: 'Interval' | 'Timeout' | 'StartPeriod') => {
    const v = str(name);
    if (v === undefined) return;
    const ns = flag(name, v, parseDuration);
    if (ns !== 0 && ns < 1e6) throw flagError(`--${name}`, v, `--${name} cannot be less than 1ms`);
    hc[key] = ns;
  };
  duration('health-interval', 'Interval');
  duration('health-timeout', 'Timeout');
  duration('health-start-period', 'StartPeriod');
  const retries = str('health-retries');
  if (retries !== undefined) {
    hc.Retries = flag('health-retries', retries, parseInteger);
    if (hc.Retries < 0) throw flagError('--health-retries', retries, '--health-retries cannot be negative');
  }
  if (bool('no-healthcheck')) {
    if (Object.keys(hc).length) throw berthError('InvalidArgument', '--no-healthcheck conflicts with --health-* options');
    config.healthcheck = { Test: ['NONE'] };
  } else if (Object.keys(hc).length) config.healthcheck = hc;
}

/** --pid, --ipc, --uts with docker's accepted values and conflicts. */
function parseNamespaceModes(str: (k: string) => string | undefined, config: ContainerConfig): void {
  const mode = (flagName: 'pid' | 'ipc' | 'uts', allowed: string[], joinable: boolean): string | undefined => {
    const v = str(flagName);
    if (v === undefined || v === '') return undefined;
    if (joinable && v.startsWith('container:') && v.length > 'container:'.length) return v;
    if (allowed.includes(v)) return v;
    throw berthError('InvalidArgument', `invalid ${flagName.toUpperCase()} mode: ${v}`);
  };
  const pid = mode('pid', ['host'], true);
  // private and shareable both give the container an IPC namespace of its own, which others may join.
  const ipc = mode('ipc', ['host', 'private', 'shareable'], true);
  const uts = mode('uts', ['host'], false);
  if (pid) config.pidMode = pid;
  if (ipc === 'host' || ipc?.startsWith('container:')) config.ipcMode = ipc;
  if (uts) {
    if (config.hostname) throw berthError('InvalidArgument', 'Conflicting options: hostname and the UTS mode');
    config.utsMode = uts;
  }
}

function parseNetwork(str: (k: string) => string | undefined, list: (k: string) => string[], bool: (k: string) => boolean): NetworkAttachment | undefined {
  const mode = str('network') ?? str('net');
  const n: NetworkAttachment = { mode: mode || 'bridge' };
  if (mode !== undefined && mode.startsWith('container:') && mode.length === 'container:'.length) {
    throw berthError('InvalidArgument', `invalid network mode: ${mode}: no container given`);
  }
  if (list('network-alias').length) n.aliases = list('network-alias');
  const ports = list('publish').flatMap((p) => flag('publish', p, parsePublish));
  if (ports.length) n.ports = ports;
  if (bool('publish-all')) n.publishAll = true;
  for (const d of list('dns')) if (!isIp(d)) throw flagError('--dns', d, `${d} is not an ip address`);
  if (list('dns').length) n.dns = list('dns');
  if (list('dns-search').length) n.dnsSearch = list('dns-search');
  if (list('dns-option').length) n.dnsOptions = list('dns-option');
  const hosts = list('add-host').map((h) => flag('add-host', h, parseAddHost));
  if (hosts.length) n.extraHosts = hosts;
  if ((n.mode === 'host' || n.mode === 'none' || n.mode.startsWith('container:')) && (n.ports || n.publishAll)) {
    throw berthError('InvalidArgument', `conflicting options: port publishing and the ${n.mode.split(':')[0]} network mode`);
  }
  return mode !== undefined || Object.keys(n).length > 1 ? n : undefined;
}
