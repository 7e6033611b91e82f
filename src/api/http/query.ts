import { berthError } from '../../core/errors.ts';

/**
 * An integer query parameter, checked at the edge: undefined when absent,
 * InvalidArgument naming the parameter when it is not a whole number in
 * `[min, max]` (`invalid value for t: "abc": must be an integer from -1 to
 * 2147483647`). `Number()` alone let "abc" through as NaN, and "" as 0.
 */
export function intQuery(query: URLSearchParams, name: string, min: number, max: number, what = `value for ${name}`): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw berthError('InvalidArgument', `invalid ${what}: "${raw}": must be an integer from ${min} to ${max}`);
  return n;
}

/** A terminal size from `h` and `w`, as resize takes it; both are required. */
export function terminalSize(query: URLSearchParams): { h: number; w: number } {
  const h = intQuery(query, 'h', 0, 65535, 'resize height');
  const w = intQuery(query, 'w', 0, 65535, 'resize width');
  if (h === undefined || w === undefined) throw berthError('InvalidArgument', 'resize needs a height (h) and a width (w)');
  return { h, w };
}

/** The stop timeout `t` in seconds; -1 waits for ever, as docker allows. */
export const stopTimeout = (query: URLSearchParams): number | undefined => intQuery(query, 't', -1, 2_147_483_647);
