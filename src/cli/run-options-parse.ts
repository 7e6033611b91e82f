import path from 'node:path';
import type { MountSpec, RestartPolicy, Ulimit } from '../core/containers.ts';
import { berthError } from '../core/errors.ts';

/**
 * Value parsers for `run`/`create` flags, with docker's messages:
 * `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`.
 * Each throws a plain Error with the detail; `flagError` adds the flag.
 */

export function flagError(label: string, value: string, detail: string): Error {
  return berthError('InvalidArgument', `invalid argument "${value}" for "${label}" flag: ${detail}`);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker's RAMInBytes: "64m", "1.5g", "512kb", "100" (bytes), binary multiples. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`invalid size: '${s}'`);
  const unit = m[2].toLowerCase();
  return Math.floor(Number(m[1]) * UNITS[unit]);
}

export function parseInteger(s: string): number {
  if (!/^[-+]?\d+$/.test(s.trim())) throw new Error(`strconv.ParseInt: parsing "${s}": invalid syntax`);
  return Number(s);
}

/** --cpus 1.5 -> 1500000000 nano-CPUs. */
const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ("30s", "1m30s", "500ms") in nanoseconds; a bare 0 is allowed. */
export function parseDuration(s: string): number {
  if (s === '0') return 0;
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== s) throw new Error(`time: invalid duration "${s}"`);
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]], 0));
}

export function parseNanoCpus(s: string): number {
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(s.trim())) throw new Error(`failed to parse ${s} as a rational number`);
  return Math.round(Number(s) * 1e9);
}

export const ULIMIT_TYPES = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** "nofile=1024:2048" or "nproc=100" (hard = soft). */
export function parseUlimit(s: string): Ulimit {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new Error(`invalid ulimit argument: ${s}`);
  const name = s.slice(0, eq);
  if (!ULIMIT_TYPES.includes(name)) throw new Error(`invalid ulimit type: ${name}`);
  const parts = s.slice(eq + 1).split(':');
  if (parts.length > 2) throw new Error(`too many limit value arguments - ${s.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const [soft, hard] = parts.map((p) => {
    if (!/^-?\d+$/.test(p)) throw new Error(`invalid ulimit argument: ${s}`);
    return Number(p);
  });
  const h = hard ?? soft;
  if (h !== -1 && soft > h) throw new Error(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${h}`);
  return { name, soft, hard: h };
}

/** no | always | unless-stopped | on-failure[:N] */
export function parseRestart(s: string): RestartPolicy {
  if (s === '' || s === 'no') return { name: 'no' };
  const [name, count, ...rest] = s.split(':');
  if (rest.length) throw new Error(`invalid restart policy format: ${s}`);
  if (name === 'always' || name === 'unless-stopped') {
    if (count !== undefined) throw new Error(`maximum retry count cannot be used with restart policy '${name}'`);
    return { name };
  }
  if (name === 'on-failure') {
    if (count === undefined) return { name };
    if (!/^\d+$/.test(count)) throw new Error('maximum retry count must be an integer');
    return { name, maximumRetryCount: Number(count) };
  }
  throw new Error(`invalid restart policy '${name}'`);
}

/**
 * Lines of an --env-file or --label-file: blank and # lines skipped,
 * "KEY=value" kept verbatim (no quote handling, as docker), a bare "KEY"
 * passed to `bare` (env: take it from the CLI's environment).
 */
export function parseKeyValueFile(text: string, file: string, bare: (key: string) => string | undefined): string[] {
  const out: string[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq >= 0 ? line.slice(0, eq) : line.replace(/\s+$/, '');
    if (!key) throw berthError('InvalidArgument', `invalid variable in ${file}: no name: ${line}`);
    if (/\s/.test(key)) throw berthError('InvalidArgument', `variable '${key}' contains whitespaces`);
    if (eq >= 0) out.push(line);
    else {
      const v = bare(key);
      if (v !== undefined) out.push(v);
    }
  }
  return out;
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const PROPAGATION = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];
const VOLUME_MODES = ['rw', 'ro', 'z', 'Z', 'nocopy', 'consistent', 'cached', 'delegated', ...PROPAGATION];

function checkTarget(raw: string, target: string, type: string): void {
  if (!target) throw new Error(`invalid volume specification: '${raw}'`);
  if (!target.startsWith('/')) {
    throw new Error(`invalid volume specification: '${raw}': invalid mount config for type "${type}": invalid mount path: '${target}' mount path must be absolute`);
  }
  if (path.posix.normalize(target) === '/') throw new Error(`invalid specification: destination can't be '/'`);
}

/** -v [SRC:]DEST[:MODES]: an absolute or ./relative SRC is a bind, a name a volume, none an anonymous volume. */
export function parseVolume(raw: string, cwd: string): MountSpec {
  const parts = raw.split(':');
  if (parts.length > 3) throw new Error(`invalid spec: ${raw}: too many colons`);
  let source = '';
  let target: string;
  let modes: string[] = [];
  if (parts.length === 1) target = parts[0];
  else if (parts.length === 2) {
    if (parts[1].split(',').every((m) => VOLUME_MODES.includes(m)) && parts[0].startsWith('/') && !parts[1].startsWith('/')) {
      throw new Error(`invalid volume specification: '${raw}'`);
    }
    [source, target] = parts;
  } else {
    [source, target] = parts;
    modes = parts[2].split(',');
    for (const m of modes) if (!VOLUME_MODES.includes(m)) throw new Error(`invalid mode: ${parts[2]}`);
    if (modes.includes('ro') && modes.includes('rw')) throw new Error(`invalid mode: ${parts[2]}`);
  }
  if (source.startsWith('.')) source = path.resolve(cwd, source);
  const type: MountSpec['type'] = source.startsWith('/') ? 'bind' : 'volume';
  checkTarget(raw, target, type);
  if (type === 'volume' && source && !VOLUME_NAME.test(source)) {
    throw new Error(`"${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  }
  if (type === 'volume' && modes.some((m) => PROPAGATION.includes(m))) throw new Error(`invalid mode: ${parts[2]}`);
  const options = modes.filter((m) => m !== 'ro' && m !== 'rw' && !['consistent', 'cached', 'delegated'].includes(m));
  const m: MountSpec = { type, target };
  if (source) m.source = source;
  if (modes.includes('ro')) m.readOnly = true;
  if (options.length) m.options = options;
  return m;
}

const truthy = (k: string, v: string | undefined): boolean => {
  if (v === undefined || v === '1' || v.toLowerCase() === 'true') return true;
  if (v === '0' || v.toLowerCase() === 'false') return false;
  throw new Error(`invalid value for ${k}: ${v}`);
};

/** --mount type=bind|volume|tmpfs,source=,target=,readonly,bind-propagation=,volume-nocopy,tmpfs-size=,tmpfs-mode= */
export function parseMount(raw: string): MountSpec {
  let type = 'volume';
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  const options: string[] = [];
  const tmpfsOpts: string[] = [];
  const bindOpts: string[] = [];
  const volumeOpts: string[] = [];
  for (const field of raw.split(',')) {
    if (!field) continue;
    const eq = field.indexOf('=');
    const key = (eq >= 0 ? field.slice(0, eq) : field).toLowerCase();
    const value = eq >= 0 ? field.slice(eq + 1) : undefined;
    const need = () => {
      if (value === undefined) throw new Error(`invalid field '${field}' must be a key=value pair`);
      return value;
    };
    switch (key) {
      case 'type':
        type = need();
        break;
      case 'source': case 'src':
        source = need();
        break;
      case 'target': case 'destination': case 'dst':
        target = need();
        break;
      case 'readonly': case 'ro':
        readOnly = truthy(key, value);
        break;
      case 'consistency':
        need();
        break;
      case 'bind-propagation':
        if (!PROPAGATION.includes(need())) throw new Error(`invalid propagation mode: ${value}`);
        bindOpts.push(need());
        break;
      case 'bind-nonrecursive':
        if (truthy(key, value)) throw new Error('bind-nonrecursive is not supported');
        break;
      case 'volume-nocopy':
        if (truthy(key, value)) volumeOpts.push('nocopy');
        break;
      case 'volume-driver':
        if (need() !== 'local') throw new Error(`volume driver "${value}" is not supported; only "local"`);
        break;
      case 'volume-label': case 'volume-opt':
        need();
        break;
      case 'tmpfs-size':
        tmpfsOpts.push(`size=${parseSize(need())}`);
        break;
      case 'tmpfs-mode':
        if (!/^[0-7]{1,4}$/.test(need())) throw new Error(`invalid value for ${key}: ${value}`);
        tmpfsOpts.push(`mode=${value}`);
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw new Error(`invalid mount type: "${type}"`);
  if (!target) throw new Error('target is required');
  if (!target.startsWith('/')) throw new Error(`invalid mount config for type "${type}": invalid mount path: '${target}' mount path must be absolute`);
  if (type === 'bind') {
    if (!source) throw new Error('invalid mount config for type "bind": field Source must not be empty');
    if (!source.startsWith('/')) throw new Error(`invalid mount config for type "bind": invalid mount path: '${source}' mount path must be absolute`);
  }
  if (type === 'tmpfs' && source) throw new Error('invalid mount config for type "tmpfs": field Source must not be specified');
  if (type === 'volume' && source && !VOLUME_NAME.test(source)) throw new Error(`"${source}" includes invalid characters for a local volume name`);
  const wrong = (t: string, list: string[]) => {
    if (list.length && type !== t) throw new Error(`cannot mix '${t}-*' options with mount type '${type}'`);
  };
  wrong('bind', bindOpts);
  wrong('tmpfs', tmpfsOpts);
  wrong('volume', volumeOpts);
  options.push(...bindOpts, ...tmpfsOpts, ...volumeOpts);
  const m: MountSpec = { type, target };
  if (source) m.source = source;
  if (readOnly) m.readOnly = true;
  if (options.length) m.options = options;
  return m;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIp = (s: string): boolean => IPV4.test(s) || (/^[0-9a-fA-F:.]+$/.test(s) && s.includes(':'));

/** --add-host host:ip or host=ip; ip may be "host-gateway". Returns "host:ip". */
export function parseAddHost(s: string): string {
  const sep = s.includes('=') ? s.indexOf('=') : s.indexOf(':');
  const host = sep > 0 ? s.slice(0, sep) : '';
  let ip = sep > 0 ? s.slice(sep + 1) : '';
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!host || !ip) throw new Error(`bad format for add-host: "${s}"`);
  if (ip !== 'host-gateway' && !isIp(ip)) throw new Error(`invalid IP address in add-host: "${ip}"`);
  return `${host}:${ip}`;
}
