import type { ImageConfigFields } from '../core/images.ts';
import { isDigest } from '../core/digest.ts';
import type { Digest } from '../core/digest.ts';
import { berthError } from '../core/errors.ts';
import { isIndexType, isLayerType, isManifestType } from '../core/media-types.ts';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from './types.ts';

/**
 * Image documents (configs, manifests, indexes) come from registries and
 * archives: untrusted. They are parsed here, with limits, and checked for
 * the types of every field berth reads, so a hostile image is refused at
 * pull or load with a message naming the field, before anything is stored.
 *
 * - Size: at most `MAX_DOCUMENT_BYTES` (the callers read no more).
 * - Depth: at most `MAX_DEPTH` nested arrays and objects. V8 parses any
 *   depth, but serialising (every answer of every door is JSON) and
 *   structuredClone recurse: a config nested 5,000 deep answered
 *   "Maximum call stack size exceeded" to anyone listing images.
 * - Types: each `sanitize*` returns a copy holding only the fields berth
 *   knows, each of its documented type, and the list of problems found
 *   (`"config.Env" must be an array of strings`). Pull, load and import
 *   refuse a document with any problem (`checked*`); a document already in
 *   the store from before these rules is read through the same copy, its
 *   bad fields dropped, so one such image cannot break listing for everyone.
 */

/** Manifests, indexes and configs are small; anything larger is refused. */
export const MAX_DOCUMENT_BYTES = 8 << 20;
/** Real configs and manifests nest 4-5 levels deep; 64 leaves ample room for annotations and extensions. */
export const MAX_DEPTH = 64;

/** The nesting depth of a JSON text, stopping as soon as it passes `limit` (so a hostile one costs one scan at most). */
export function jsonDepth(buf: Uint8Array, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return max;
}

/** Parse an untrusted JSON document within the size and depth limits; `what` names it in errors (InvalidArgument). */
export function parseUntrustedJson(buf: Buffer, what: string): unknown {
  if (buf.length > MAX_DOCUMENT_BYTES) throw berthError('InvalidArgument', `${what}: ${buf.length} bytes is more than the ${MAX_DOCUMENT_BYTES}-byte limit`);
  if (jsonDepth(buf, MAX_DEPTH) > MAX_DEPTH) throw berthError('InvalidArgument', `${what}: nested more than ${MAX_DEPTH} levels deep`);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw berthError('InvalidArgument', `${what}: not valid JSON: ${(err as Error).message}`, err);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Collects problems with their field paths while a copy is built. */
class Fields {
  readonly problems: string[] = [];

  bad(path: string, want: string): undefined {
    this.problems.push(`"${path}" must be ${want}`);
    return undefined;
  }

  str(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : this.bad(path, 'a string');
  }

  bool(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'boolean' ? v : this.bad(path, 'true or false');
  }

  count(v: unknown, path: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : this.bad(path, 'a non-negative integer');
  }

  strings(v: unknown, path: string): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : this.bad(path, 'an array of strings');
  }

  /** An array of strings, or null (docker's "reset" for Cmd and Entrypoint). */
  stringsOrNull(v: unknown, path: string): string[] | null | undefined {
    return v === null ? null : this.strings(v, path);
  }

  stringMap(v: unknown, path: string): Record<string, string> | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isObj(v) || !Object.values(v).every((x) => typeof x === 'string')) return this.bad(path, 'an object of strings');
    return { ...(v as Record<string, string>) };
  }

  /** Docker's sets (ExposedPorts, Volumes): keys matter, values are empty objects. */
  set(v: unknown, path: string): Record<string, object> | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) return this.bad(path, 'an object');
    return Object.fromEntries(Object.keys(v).map((k) => [k, {}]));
  }

  digest(v: unknown, path: string): Digest | undefined {
    return typeof v === 'string' && isDigest(v) ? v : this.bad(path, 'a digest (algorithm:hex)');
  }
}

/** Drop undefined values, so a copy holds only the fields the document had. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function platformOf(f: Fields, v: unknown, path: string): Platform | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) return f.bad(path, 'an object');
  return compact({
    architecture: f.str(v.architecture, `${path}.architecture`) ?? '',
    os: f.str(v.os, `${path}.os`) ?? '',
    variant: f.str(v.variant, `${path}.variant`),
  });
}

function descriptorOf(f: Fields, v: unknown, path: string): Descriptor | undefined {
  if (!isObj(v)) return f.bad(path, 'a descriptor object');
  const mediaType = f.str(v.mediaType, `${path}.mediaType`);
  const digest = f.digest(v.digest, `${path}.digest`);
  const size = f.count(v.size, `${path}.size`);
  if (mediaType === undefined || digest === undefined || size === undefined) {
    if (mediaType === undefined && v.mediaType === undefined) f.bad(`${path}.mediaType`, 'a string');
    if (size === undefined && v.size === undefined) f.bad(`${path}.size`, 'a non-negative integer');
    return undefined;
  }
  return compact({
    mediaType,
    digest,
    size,
    urls: f.strings(v.urls, `${path}.urls`),
    annotations: f.stringMap(v.annotations, `${path}.annotations`),
    platform: platformOf(f, v.platform, `${path}.platform`),
  });
}

function descriptorsOf(f: Fields, v: unknown, path: string): Descriptor[] {
  if (!Array.isArray(v)) return f.bad(path, 'an array of descriptors') ?? [];
  return v.map((d, i) => descriptorOf(f, d, `${path}[${i}]`)).filter((d): d is Descriptor => d !== undefined);
}

/** A sanitized copy of an image config and the problems found. */
export function sanitizeConfig(doc: unknown): { value: ImageConfig; problems: string[] } {
  const f = new Fields();
  const c = isObj(doc) ? doc : (f.bad('', 'an object'), {} as Obj);
  let fields: ImageConfigFields | undefined;
  if (c.config !== undefined && c.config !== null) {
    if (!isObj(c.config)) f.bad('config', 'an object');
    else {
      const r = c.config;
      let health: ImageConfigFields['Healthcheck'];
      if (r.Healthcheck !== undefined && r.Healthcheck !== null) {
        const h = r.Healthcheck;
        if (!isObj(h)) f.bad('config.Healthcheck', 'an object');
        else {
          health = compact({
            Test: f.strings(h.Test, 'config.Healthcheck.Test'),
            Interval: f.count(h.Interval, 'config.Healthcheck.Interval'),
            Timeout: f.count(h.Timeout, 'config.Healthcheck.Timeout'),
            StartPeriod: f.count(h.StartPeriod, 'config.Healthcheck.StartPeriod'),
            Retries: f.count(h.Retries, 'config.Healthcheck.Retries'),
          });
        }
      }
      fields = compact({
        User: f.str(r.User, 'config.User'),
        ExposedPorts: f.set(r.ExposedPorts, 'config.ExposedPorts'),
        Env: f.strings(r.Env, 'config.Env'),
        Entrypoint: f.stringsOrNull(r.Entrypoint, 'config.Entrypoint'),
        Cmd: f.stringsOrNull(r.Cmd, 'config.Cmd'),
        Volumes: f.set(r.Volumes, 'config.Volumes'),
        WorkingDir: f.str(r.WorkingDir, 'config.WorkingDir'),
        Labels: f.stringMap(r.Labels, 'config.Labels'),
        StopSignal: f.str(r.StopSignal, 'config.StopSignal'),
        OnBuild: f.stringsOrNull(r.OnBuild, 'config.OnBuild'),
        Healthcheck: health,
      });
    }
  }
  let diffIds: Digest[] = [];
  let rootfsType = 'layers';
  if (!isObj(c.rootfs)) f.bad('rootfs', 'an object');
  else {
    rootfsType = f.str(c.rootfs.type, 'rootfs.type') ?? 'layers';
    if (!Array.isArray(c.rootfs.diff_ids)) f.bad('rootfs.diff_ids', 'an array of digests');
    else diffIds = c.rootfs.diff_ids.map((d, i) => f.digest(d, `rootfs.diff_ids[${i}]`)).filter((d): d is Digest => d !== undefined);
  }
  let history: ImageConfig['history'];
  if (c.history !== undefined && c.history !== null) {
    if (!Array.isArray(c.history)) f.bad('history', 'an array');
    else {
      history = [];
      c.history.forEach((h, i) => {
        if (!isObj(h)) return void f.bad(`history[${i}]`, 'an object');
        history!.push(compact({
          created: f.str(h.created, `history[${i}].created`),
          created_by: f.str(h.created_by, `history[${i}].created_by`),
          author: f.str(h.author, `history[${i}].author`),
          comment: f.str(h.comment, `history[${i}].comment`),
          empty_layer: f.bool(h.empty_layer, `history[${i}].empty_layer`),
        }));
      });
    }
  }
  const value = compact({
    created: f.str(c.created, 'created'),
    author: f.str(c.author, 'author'),
    architecture: f.str(c.architecture, 'architecture') ?? '',
    os: f.str(c.os, 'os') ?? '',
    variant: f.str(c.variant, 'variant'),
    config: fields,
    rootfs: { type: rootfsType, diff_ids: diffIds },
    history,
    comment: f.str(c.comment, 'comment'),
    docker_version: f.str(c.docker_version, 'docker_version'),
  });
  return { value, problems: f.problems };
}

/** A sanitized copy of an image manifest (OCI or Docker schema 2) and the problems found, media types included. */
export function sanitizeManifest(doc: unknown): { value: Manifest; problems: string[] } {
  const f = new Fields();
  const m = isObj(doc) ? doc : (f.bad('', 'an object'), {} as Obj);
  const mediaType = f.str(m.mediaType, 'mediaType');
  if (mediaType !== undefined && !isManifestType(mediaType)) f.problems.push(`unsupported manifest media type "${mediaType}"`);
  const config = m.config === undefined ? f.bad('config', 'a descriptor object') : descriptorOf(f, m.config, 'config');
  const layers = m.layers === undefined ? f.bad('layers', 'an array of descriptors') ?? [] : descriptorsOf(f, m.layers, 'layers');
  layers.forEach((l, i) => {
    if (!isLayerType(l.mediaType)) f.problems.push(`unsupported layer media type "${l.mediaType}" (layers[${i}], ${l.digest})`);
  });
  const value = compact({
    schemaVersion: f.count(m.schemaVersion, 'schemaVersion') ?? 2,
    mediaType,
    config: config ?? ({ mediaType: '', digest: '' as Digest, size: 0 } as Descriptor),
    layers,
    annotations: f.stringMap(m.annotations, 'annotations'),
  });
  return { value, problems: f.problems };
}

/** A sanitized copy of an image index (OCI or Docker manifest list) and the problems found. */
export function sanitizeIndex(doc: unknown): { value: Index; problems: string[] } {
  const f = new Fields();
  const x = isObj(doc) ? doc : (f.bad('', 'an object'), {} as Obj);
  const mediaType = f.str(x.mediaType, 'mediaType');
  if (mediaType !== undefined && !isIndexType(mediaType)) f.problems.push(`unsupported index media type "${mediaType}"`);
  const manifests = x.manifests === undefined ? f.bad('manifests', 'an array of descriptors') ?? [] : descriptorsOf(f, x.manifests, 'manifests');
  return { value: compact({ schemaVersion: f.count(x.schemaVersion, 'schemaVersion') ?? 2, mediaType, manifests }), problems: f.problems };
}

type Sanitizer<T> = (doc: unknown) => { value: T; problems: string[] };

/** Parse and check a document before it is stored: any problem refuses it (InvalidArgument naming `what` and the fields). */
function checked<T>(sanitize: Sanitizer<T>, buf: Buffer, what: string): T {
  const { value, problems } = sanitize(parseUntrustedJson(buf, what));
  if (problems.length) {
    const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
    throw berthError('InvalidArgument', `${what}: ${problems.slice(0, 3).join('; ')}${more}`);
  }
  return value;
}

export const checkedConfig = (buf: Buffer, what: string): ImageConfig => checked(sanitizeConfig, buf, what);
export const checkedManifest = (buf: Buffer, what: string): Manifest => checked(sanitizeManifest, buf, what);
export const checkedIndex = (buf: Buffer, what: string): Index => checked(sanitizeIndex, buf, what);

/**
 * A document already in the store, read leniently: the sanitized copy, with
 * its problems for the caller to log. No depth limit here: V8 parses any
 * depth, and the copy keeps only flat, typed fields, so an image stored
 * before these rules lists, inspects and is removed like any other.
 */
export function storedDocument<T>(sanitize: Sanitizer<T>, buf: Buffer, what: string): { value: T; problems: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw berthError('DataLoss', `${what} is not valid JSON`, err);
  }
  return sanitize(doc);
}
