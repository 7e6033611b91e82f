import { berthError, type BerthError } from './errors.ts';

/**
 * A small schema for request bodies, checked at a front door's edge before
 * anything reads a field: types, ranges, lengths and allowed values, with
 * a message that names the field. One schema per request body; the
 * native, Docker and CRI doors share this checker and word the message as
 * their peers do (`style`).
 *
 * Vocabulary: a schema is built from `t` (t.string, t.int, t.object, ...).
 * Objects ignore fields they do not list, as dockerd and containerd ignore
 * fields they do not know; `null` stands for an absent field wherever the
 * schema says `nullable` (Go's encoding treats it so).
 *
 * Errors: InvalidArgument, e.g. in docker's words
 * `json: cannot unmarshal number into Go struct field .Image of type string`,
 * or in berth's `Image: expected a string, got a number`, and for ranges
 * `HostConfig.CpuShares: -9 is below the minimum 0`.
 *
 * Example:
 *   const body = t.object({ Image: t.string({ minLength: 1 }), HostConfig: t.object({ Memory: t.int({ min: 0 }) }) });
 *   checkBody(body, JSON.parse(text), 'docker');
 */
export type Schema =
  | { kind: 'string'; nullable?: boolean; minLength?: number; maxLength?: number; oneOf?: readonly string[] }
  | { kind: 'int'; nullable?: boolean; min?: number; max?: number; go?: string }
  | { kind: 'number'; nullable?: boolean; min?: number; max?: number }
  | { kind: 'boolean'; nullable?: boolean }
  | { kind: 'array'; nullable?: boolean; items: Schema; maxItems?: number; minItems?: number }
  | { kind: 'object'; nullable?: boolean; fields: Record<string, Schema>; go?: string }
  | { kind: 'map'; nullable?: boolean; values: Schema }
  | { kind: 'oneOf'; nullable?: boolean; options: Schema[] }
  | { kind: 'any'; nullable?: boolean };

type Opts<K extends Schema['kind']> = Omit<Extract<Schema, { kind: K }>, 'kind'>;

/** The largest integer a JSON number carries exactly; Go's int64 fields take no more in practice. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export const t = {
  string: (o: Opts<'string'> = {}): Schema => ({ kind: 'string', nullable: true, ...o }),
  int: (o: Partial<Opts<'int'>> = {}): Schema => ({ kind: 'int', nullable: true, min: -MAX_SAFE, max: MAX_SAFE, ...o }),
  number: (o: Partial<Opts<'number'>> = {}): Schema => ({ kind: 'number', nullable: true, ...o }),
  boolean: (o: Opts<'boolean'> = {}): Schema => ({ kind: 'boolean', nullable: true, ...o }),
  array: (items: Schema, o: Partial<Opts<'array'>> = {}): Schema => ({ kind: 'array', nullable: true, items, ...o }),
  object: (fields: Record<string, Schema>, o: Partial<Opts<'object'>> = {}): Schema => ({ kind: 'object', nullable: true, fields, ...o }),
  map: (values: Schema, o: Partial<Opts<'map'>> = {}): Schema => ({ kind: 'map', nullable: true, values, ...o }),
  oneOf: (...options: Schema[]): Schema => ({ kind: 'oneOf', nullable: true, options }),
  any: (): Schema => ({ kind: 'any', nullable: true }),
  strings: (o: Partial<Opts<'array'>> = {}): Schema => ({ kind: 'array', nullable: true, items: { kind: 'string' }, ...o }),
};

/** Where a value broke its schema: the field's path and what was wrong. */
export interface Violation {
  path: string;
  /** A type mismatch: what the schema wanted and what the JSON held. */
  expected?: Schema;
  got?: string;
  /** Any other failure (range, length, value), as a sentence about the value. */
  problem?: string;
}

/** The first violation of `schema` by `value`, or undefined when it conforms. */
export function violation(schema: Schema, value: unknown, path = ''): Violation | undefined {
  if (value === null || value === undefined) return schema.nullable === false && value === null ? { path, expected: schema, got: 'null' } : undefined;
  switch (schema.kind) {
    case 'any':
      return undefined;
    case 'string': {
      if (typeof value !== 'string') return { path, expected: schema, got: jsonType(value) };
      if (schema.minLength !== undefined && value.length < schema.minLength) return { path, problem: schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters long` };
      if (schema.maxLength !== undefined && value.length > schema.maxLength) return { path, problem: `is longer than ${schema.maxLength} characters` };
      if (schema.oneOf && !schema.oneOf.includes(value)) return { path, problem: `"${value}" is not one of ${schema.oneOf.map((v) => `"${v}"`).join(', ')}` };
      return undefined;
    }
    case 'int':
    case 'number': {
      if (typeof value !== 'number') return { path, expected: schema, got: jsonType(value) };
      if (schema.kind === 'int' && !Number.isInteger(value)) return { path, expected: schema, got: `number ${value}` };
      if (schema.min !== undefined && value < schema.min) return { path, problem: `${value} is below the minimum ${schema.min}` };
      if (schema.max !== undefined && value > schema.max) return { path, problem: `${value} is above the maximum ${schema.max}` };
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : { path, expected: schema, got: jsonType(value) };
    case 'array': {
      if (!Array.isArray(value)) return { path, expected: schema, got: jsonType(value) };
      if (schema.maxItems !== undefined && value.length > schema.maxItems) return { path, problem: `has more than ${schema.maxItems} items` };
      if (schema.minItems !== undefined && value.length < schema.minItems) return { path, problem: `needs at least ${schema.minItems} items` };
      for (let i = 0; i < value.length; i++) {
        const v = violation({ ...schema.items, nullable: false }, value[i], `${path}[${i}]`);
        if (v) return v;
      }
      return undefined;
    }
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return { path, expected: schema, got: jsonType(value) };
      for (const [k, s] of Object.entries(schema.fields)) {
        if (!Object.hasOwn(value, k)) continue;
        const v = violation(s, (value as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
        if (v) return v;
      }
      return undefined;
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) return { path, expected: schema, got: jsonType(value) };
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const bad = violation(schema.values, v, `${path}[${JSON.stringify(k)}]`);
        if (bad) return bad;
      }
      return undefined;
    }
    case 'oneOf': {
      for (const o of schema.options) if (!violation(o, value, path)) return undefined;
      return { path, expected: schema, got: jsonType(value) };
    }
  }
}

/**
 * Checks a request body and throws InvalidArgument naming the first bad
 * field. `style` words it: `docker` as dockerd's JSON decoder does, `plain`
 * (native API, CRI) as a sentence about the field.
 */
export function checkBody(schema: Schema, value: unknown, style: 'docker' | 'plain' = 'plain'): void {
  const v = violation({ ...schema, nullable: true }, value);
  if (v) throw violationError(v, style, schema.kind === 'object' ? schema.go : undefined);
}

/** The error for a violation; `root` is the Go name of the body's type, as dockerd's decoder names it. */
export function violationError(v: Violation, style: 'docker' | 'plain', root?: string): BerthError {
  const where = v.path || 'the request body';
  if (v.problem) return berthError('InvalidArgument', `${style === 'docker' ? `invalid ${where}` : where}: ${v.problem}`);
  if (style === 'docker') {
    const field = `${root?.replace(/^.*\./, '') ?? ''}.${v.path}`;
    return berthError('InvalidArgument', `json: cannot unmarshal ${v.got} into Go ${v.path ? `struct field ${field}` : 'value'} of type ${goType(v.expected!)}`);
  }
  return berthError('InvalidArgument', `${where}: expected ${describe(v.expected!)}, got ${article(v.got!)}`);
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

function describe(s: Schema): string {
  switch (s.kind) {
    case 'string':
      return 'a string';
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'array':
      return `a list of ${plural(s.items)}`;
    case 'object':
    case 'map':
      return 'an object';
    case 'oneOf':
      return s.options.map(describe).join(' or ');
    case 'any':
      return 'a value';
  }
}

function plural(s: Schema): string {
  return { string: 'strings', int: 'integers', number: 'numbers', boolean: 'booleans', array: 'lists', object: 'objects', map: 'objects', oneOf: 'values', any: 'values' }[s.kind];
}

function goType(s: Schema): string {
  switch (s.kind) {
    case 'string':
      return 'string';
    case 'int':
      return s.go ?? 'int64';
    case 'number':
      return 'float64';
    case 'boolean':
      return 'bool';
    case 'array':
      return `[]${goType(s.items)}`;
    case 'object':
      return s.go ?? 'struct';
    case 'map':
      return `map[string]${goType(s.values)}`;
    case 'oneOf':
      return goType(s.options[0]);
    case 'any':
      return 'interface {}';
  }
}

function article(got: string): string {
  if (got.startsWith('number ')) return `the number ${got.slice(7)}`;
  return got === 'null' ? 'null' : `${/^[aeiou]/.test(got) ? 'an' : 'a'} ${got}`;
}
