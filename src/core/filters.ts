import { berthError } from './errors.ts';

/**
 * docker's `filters` query parameter: JSON of either
 * `{"key":{"value":true}}` (the CLI's) or `{"key":["value"]}`; both read as
 * `{ key: ['value'] }`. InvalidArgument when it is not JSON.
 */
export function parseFilters(raw: string | null): Record<string, string[]> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw berthError('InvalidArgument', `invalid filters: ${raw}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw berthError('InvalidArgument', `invalid filters: ${raw}`);
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    out[k] = Array.isArray(v) ? v.map(String) : Object.keys((v ?? {}) as object);
  }
  return out;
}
