import { berthError } from './errors.ts';

/**
 * Configuration schema pieces. Each subsystem declares its own section next
 * to its code (`content/config.ts`, `runtime/config.ts`, ...) with a default
 * and a one-line trade-off for every key; daemon/config.ts assembles them,
 * reads the TOML file and hands each subsystem its typed section. Only
 * daemon/ reads files or the environment.
 */
export type FieldType = 'string' | 'number' | 'boolean' | 'string[]';

export interface FieldSpec {
  type: FieldType;
  default: string | number | boolean | string[];
  doc: string;
}

export interface ConfigSection {
  /** The TOML table name, e.g. "runtime" or "network". */
  name: string;
  doc: string;
  fields: Record<string, FieldSpec>;
}

export type SectionValues = Record<string, string | number | boolean | string[]>;

/** Check `raw` against `section`, filling defaults; an unknown key or wrong type names its path. */
export function resolveSection(section: ConfigSection, raw: unknown): SectionValues {
  const out: SectionValues = {};
  const given = (raw ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given)) {
    throw berthError('InvalidArgument', `config: [${section.name}] must be a table`);
  }
  for (const key of Object.keys(given)) {
    if (!(key in section.fields)) throw berthError('InvalidArgument', `config: unknown key "${section.name}.${key}"`);
  }
  for (const [key, spec] of Object.entries(section.fields)) {
    const v = given[key];
    if (v === undefined) {
      out[key] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
      continue;
    }
    const ok =
      spec.type === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof v === spec.type || (spec.type === 'number' && typeof v === 'bigint');
    if (!ok) throw berthError('InvalidArgument', `config: "${section.name}.${key}" must be a ${spec.type}`);
    out[key] = typeof v === 'bigint' ? Number(v) : (v as string | number | boolean | string[]);
  }
  return out;
}
