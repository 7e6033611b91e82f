import type { Ctx } from '../core/context.ts';
import { validateNamespace } from '../core/context.ts';
import { berthError } from '../core/errors.ts';

/** The ctx's namespace, refused with InvalidArgument if malformed. */
export function nsOf(ctx: Ctx): string {
  if (!validateNamespace(ctx.namespace)) throw berthError('InvalidArgument', `invalid namespace "${ctx.namespace}"`);
  return ctx.namespace;
}

/** Labels as stored: a JSON object of strings. */
export function parseLabels(text: string | null | undefined): Record<string, string> {
  return text ? (JSON.parse(text) as Record<string, string>) : {};
}

/** True when `labels` satisfies every filter entry: `true` means "key present", a string means "equal". */
export function labelsMatch(labels: Record<string, string>, filter: Record<string, string | true> | undefined): boolean {
  if (!filter) return true;
  for (const [k, v] of Object.entries(filter)) {
    if (!(k in labels)) return false;
    if (v !== true && labels[k] !== v) return false;
  }
  return true;
}

export function checkLabels(what: string, labels: Record<string, string> | undefined): void {
  if (!labels) return;
  for (const [k, v] of Object.entries(labels)) {
    if (!k || typeof v !== 'string') throw berthError('InvalidArgument', `${what}: label "${k}" must be a non-empty key with a string value`);
  }
}

export const nowIso = (): string => new Date().toISOString();
