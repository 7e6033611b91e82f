import { readFile } from 'node:fs/promises';
import { parse, stringify } from 'smol-toml';
import type { ConfigSection, SectionValues } from '../core/config.ts';
import { resolveSection } from '../core/config.ts';
import { berthError, hasErrno } from '../core/errors.ts';

/**
 * The daemon's configuration: /etc/berth/berth.toml. `version` selects the
 * schema; older files are upgraded by ordered migrations. Every subsystem's
 * section is declared beside its code and listed in `sections`.
 */
export const CONFIG_VERSION = 1;

export const daemonSection: ConfigSection = {
  name: 'daemon',
  doc: 'berthd itself',
  fields: {
    root: { type: 'string', default: '/var/lib/berth', doc: 'persistent state: content, snapshots, database (--root overrides)' },
    state: { type: 'string', default: '/run/berth', doc: 'runtime state: sockets, monitor files, netns mounts; lost on reboot (--state overrides)' },
    address: { type: 'string', default: '', doc: 'native API socket; empty means <state>/berth.sock (--address overrides)' },
    socket_mode: { type: 'string', default: '0600', doc: 'permission bits of every API socket; widen only for a trusted group' },
    socket_group: { type: 'string', default: '', doc: 'group that owns the sockets; empty keeps root' },
    log_level: { type: 'string', default: 'info', doc: 'debug, info, warn or error' },
    host_cli: { type: 'boolean', default: true, doc: "run root's berth commands inside berthd for the native berth client, sparing each a Node start-up; false makes every command start its own Node" },
  },
};

/** Migrations from version N to N+1, applied in order to the parsed TOML. */
const migrations: Array<(raw: Record<string, unknown>) => Record<string, unknown>> = [];

export interface Config {
  version: number;
  sections: Record<string, SectionValues>;
}

export function resolveConfig(raw: Record<string, unknown>, sections: ConfigSection[]): Config {
  let doc = { ...raw };
  let version = typeof doc.version === 'number' || typeof doc.version === 'bigint' ? Number(doc.version) : CONFIG_VERSION;
  if (version > CONFIG_VERSION) throw berthError('InvalidArgument', `config: version ${version} is newer than this berthd understands (${CONFIG_VERSION})`);
  while (version < CONFIG_VERSION) {
    doc = migrations[version - 1](doc);
    version++;
  }
  delete doc.version;
  const known = new Map(sections.map((s) => [s.name, s]));
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw berthError('InvalidArgument', `config: unknown section or key "${key}"`);
  }
  const out: Record<string, SectionValues> = {};
  for (const s of sections) out[s.name] = resolveSection(s, doc[s.name]);
  return { version: CONFIG_VERSION, sections: out };
}

export async function loadConfig(path: string | undefined, sections: ConfigSection[]): Promise<Config> {
  if (!path) return resolveConfig({}, sections);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    // The default path may simply not exist; an explicit one must.
    if (hasErrno(err, 'ENOENT') && path === '/etc/berth/berth.toml') return resolveConfig({}, sections);
    throw berthError('InvalidArgument', `config: cannot read ${path}: ${(err as Error).message}`, err);
  }
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw berthError('InvalidArgument', `config: ${path}: ${(err as Error).message}`, err);
  }
  return resolveConfig(raw, sections);
}

/** The default configuration as commented TOML (`berthd config default`). */
export function defaultConfigToml(sections: ConfigSection[]): string {
  const lines = [`version = ${CONFIG_VERSION}`, ''];
  for (const s of sections) {
    lines.push(`# ${s.doc}`, `[${s.name}]`);
    for (const [k, f] of Object.entries(s.fields)) {
      lines.push(`# ${f.doc}`);
      lines.push(stringify({ [k]: f.default }).trim());
    }
    lines.push('');
  }
  return lines.join('\n');
}

export function configToml(cfg: Config): string {
  return `version = ${cfg.version}\n\n` + stringify(cfg.sections);
}
