/**
 * docker's `--format`: `json` (one JSON object a line), `table` with an
 * optional template, or a Go-template subset: `{{.Field}}`, `{{json .}}`,
 * `{{json .Field}}`, `{{upper .F}}`/`{{lower .F}}`, and `\t`/`\n` escapes.
 * An unknown field is an error naming it, as Go's template is for a struct;
 * a missing map key (labels, options: names that do not start with a capital,
 * as every field of docker's structs does) prints `<no value>` as Go does for
 * maps.
 */
export function renderTemplate(tpl: string, obj: Record<string, unknown>): string {
  const text = tpl.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return text.replace(/\{\{\s*(?:(json|upper|lower|println)\s+)?\.([\w.]*)\s*\}\}/g, (_m, fn: string | undefined, path: string) => {
    let v: unknown = obj;
    if (path) {
      for (const part of path.split('.')) {
        if (v !== null && typeof v === 'object' && part in (v as object)) v = (v as Record<string, unknown>)[part];
        else if (v !== null && typeof v === 'object' && !/^[A-Z]/.test(part)) v = undefined;
        else throw Object.assign(new Error(`template: can't evaluate field ${part}`), { exit: 1 });
      }
    }
    if (fn === 'json') return JSON.stringify(v);
    const s = v === null || v === undefined ? '<no value>' : typeof v === 'object' ? goPrint(v) : String(v);
    if (fn === 'upper') return s.toUpperCase();
    if (fn === 'lower') return s.toLowerCase();
    if (fn === 'println') return `${s}\n`;
    return s;
  });
}

/** How Go's fmt prints maps and slices: `map[k:v]`, `[a b]`. */
function goPrint(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'object' && x !== null ? goPrint(x) : String(x))).join(' ')}]`;
  if (v && typeof v === 'object') {
    return `map[${Object.entries(v)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, x]) => `${k}:${typeof x === 'object' && x !== null ? goPrint(x) : String(x)}`)
      .join(' ')}]`;
  }
  return String(v);
}

/** Output rows under `--format`: undefined format means the caller's default table. */
export function formatRows(format: string, rows: Record<string, unknown>[], headers?: Record<string, string>): string {
  if (format === 'json') return rows.map((r) => JSON.stringify(r) + '\n').join('');
  if (format.startsWith('table')) {
    const tpl = format.slice('table'.length).trim();
    const cells = (r: Record<string, unknown>) => renderTemplate(tpl, r).split('\t');
    const head = headers ? renderTemplate(tpl, headers).split('\t') : [];
    const body = rows.map(cells);
    const all = head.length ? [head, ...body] : body;
    const widths: number[] = [];
    for (const r of all) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
    return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3))).join('').trimEnd() + '\n').join('');
  }
  return rows.map((r) => renderTemplate(format, r) + '\n').join('');
}
