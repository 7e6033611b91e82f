import type { Instruction } from './dockerfile.ts';
import { parseError } from './dockerfile.ts';

/**
 * `RUN --mount=...` as BuildKit reads it: comma-separated `key=value`
 * fields (`type` defaults to bind), for the three kinds berth supports.
 * bind: `source` (default the root) of the context or of `from` (a stage or
 * an image), read-only; cache: a directory kept across builds under `id`
 * (default the target), created with `mode`, `uid`, `gid`; tmpfs: a fresh
 * tmpfs of `size` bytes. Pure.
 */
export type RunMount =
  | { type: 'bind'; target: string; source: string; from?: string }
  | { type: 'cache'; target: string; id: string; mode: number; uid: number; gid: number; sharing: 'shared' | 'private' | 'locked' }
  | { type: 'tmpfs'; target: string; size?: number };

export function parseRunMount(ins: Instruction, spec: string): RunMount {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
    fields.set(key, i < 0 ? 'true' : part.slice(i + 1));
  }
  const type = fields.get('type') ?? 'bind';
  const target = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
  const bad = (msg: string) => parseError(ins.pos, `RUN --mount=${spec}: ${msg}`);
  if (!target) throw bad('a target is required (target=/path)');
  if (!target.startsWith('/')) throw bad(`the target "${target}" must be an absolute path`);
  const known: Record<string, string[]> = {
    bind: ['type', 'target', 'dst', 'destination', 'source', 'src', 'from', 'readonly', 'ro', 'rw', 'readwrite'],
    cache: ['type', 'target', 'dst', 'destination', 'id', 'mode', 'uid', 'gid', 'sharing', 'readonly', 'ro', 'from', 'source', 'src'],
    tmpfs: ['type', 'target', 'dst', 'destination', 'size'],
  };
  if (!known[type]) throw bad(`type "${type}" is not supported (berth supports bind, cache and tmpfs)`);
  for (const k of fields.keys()) if (!known[type].includes(k)) throw bad(`unknown option "${k}" for a ${type} mount`);
  const num = (k: string, def: number, base = 10) => {
    const v = fields.get(k);
    if (v === undefined) return def;
    const n = parseInt(v, base);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw bad(`${k}=${v} is not a number`);
    return n;
  };
  if (type === 'bind') {
    if (fields.has('rw') || fields.has('readwrite')) throw bad('read-write bind mounts are not supported by berth: writes would land in the build context');
    const source = fields.get('source') ?? fields.get('src') ?? '/';
    const from = fields.get('from');
    return { type, target, source, ...(from ? { from } : {}) };
  }
  if (type === 'cache') {
    if (fields.has('from') || fields.has('source') || fields.has('src')) throw bad('a cache mount seeded from another stage is not supported by berth');
    const sharing = fields.get('sharing') ?? 'shared';
    if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw bad(`sharing=${sharing}: want shared, private or locked`);
    return { type, target, id: fields.get('id') || target, mode: num('mode', 0o755, 8), uid: num('uid', 0), gid: num('gid', 0), sharing };
  }
  const size = fields.get('size');
  let bytes: number | undefined;
  if (size !== undefined) {
    const m = /^(\d+)([kmg]?)b?$/i.exec(size);
    if (!m) throw bad(`size=${size} is not a size (bytes, or with k, m, g)`);
    bytes = Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  }
  return { type: 'tmpfs', target, ...(bytes !== undefined ? { size: bytes } : {}) };
}
