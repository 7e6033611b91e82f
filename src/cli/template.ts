import { byCodeUnit } from '../core/order.ts';

/**
 * docker's `--format`: `json` (one JSON object a line), `table` with an
 * optional template, or a Go-template subset with what docker users write:
 *   {{.Field.Sub}}  {{.}}  {{$}}  {{$var.Field}}
 *   {{range .List}}...{{else}}...{{end}}  {{range $k, $v := .Map}}...{{end}}
 *   {{if .X}}...{{else if .Y}}...{{else}}...{{end}}  {{with .X}}...{{end}}
 *   functions json, join, split, index, len, upper, lower, title, println,
 *   print, printf (%s %d %v %q), truncate, pad; pipes (`.X | json`) and
 *   parenthesised ones as arguments (`printf "%d" (len .X)`);
 *   `{{-`/`-}}` trim spaces; `\t`/`\n` escapes.
 * An unknown field is an error naming it, as Go's template is for a struct;
 * a missing map key (labels, options: names that do not start with a capital,
 * as every field of docker's structs does) prints `<no value>` as Go does for
 * maps.
 */
export function renderTemplate(tpl: string, obj: unknown): string {
  const text = tpl.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const nodes = parse(lex(text));
  let out = '';
  exec(nodes, { dot: obj, vars: new Map([['$', obj]]) }, (s) => (out += s));
  return out;
}

type Token = { text: string } | { action: string };
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'print'; pipe: string }
  | { kind: 'range'; pipe: string; keyVar?: string; valueVar?: string; body: Node[]; otherwise: Node[] }
  | { kind: 'if' | 'with'; pipe: string; body: Node[]; otherwise: Node[] };
interface Scope {
  dot: unknown;
  vars: Map<string, unknown>;
}

function fail(message: string): never {
  throw Object.assign(new Error(`template: ${message}`), { exit: 1 });
}

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let before = text.slice(at, m.index);
    if (m[1]) before = before.trimEnd();
    tokens.push({ text: before }, { action: m[2].trim() });
    at = re.lastIndex;
    if (m[3]) {
      const rest = text.slice(at);
      at += rest.length - rest.trimStart().length;
      re.lastIndex = at;
    }
  }
  tokens.push({ text: text.slice(at) });
  return tokens;
}

function parse(tokens: Token[]): Node[] {
  let i = 0;
  const block = (): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (i < tokens.length) {
      const t = tokens[i++];
      if ('text' in t) {
        if (t.text) nodes.push({ kind: 'text', text: t.text });
        continue;
      }
      const a = t.action;
      if (a === 'end' || a === 'else' || a.startsWith('else ')) return { nodes, end: a };
      const [word] = a.split(/\s+/, 1);
      if (word === 'range' || word === 'if' || word === 'with') nodes.push(control(word, a.slice(word.length).trim()));
      else if (!a.startsWith('/*')) nodes.push({ kind: 'print', pipe: a });
    }
    return { nodes, end: '' };
  };
  /** A range, if or with up to its {{end}}; `{{else if X}}` nests an if that shares that {{end}}. */
  const control = (word: 'range' | 'if' | 'with', pipe: string): Node => {
    const body = block();
    let otherwise: Node[] = [];
    let end = body.end;
    const chained = /^else\s+(if|with)\s+(.+)$/.exec(end);
    if (chained) {
      otherwise = [control(chained[1] as 'if' | 'with', chained[2])];
      end = 'end';
    } else if (end === 'else') {
      const rest = block();
      otherwise = rest.nodes;
      end = rest.end;
    }
    if (end !== 'end') fail(`unexpected EOF in ${word}`);
    if (word !== 'range') return { kind: word, pipe, body: body.nodes, otherwise };
    const decl = /^(\$\w+)(?:\s*,\s*(\$\w+))?\s*:=\s*(.+)$/.exec(pipe);
    if (!decl) return { kind: 'range', pipe, body: body.nodes, otherwise };
    const [keyVar, valueVar] = decl[2] ? [decl[1], decl[2]] : [undefined, decl[1]];
    return { kind: 'range', pipe: decl[3], keyVar, valueVar, body: body.nodes, otherwise };
  };
  const { nodes, end } = block();
  if (end) fail(`unexpected {{${end}}}`);
  return nodes;
}

function exec(nodes: Node[], scope: Scope, emit: (s: string) => void): void {
  for (const n of nodes) {
    if (n.kind === 'text') emit(n.text);
    else if (n.kind === 'print') emit(show(evalPipe(n.pipe, scope)));
    else if (n.kind === 'if' || n.kind === 'with') {
      const v = evalPipe(n.pipe, scope);
      if (truthy(v)) exec(n.body, n.kind === 'with' ? { ...scope, dot: v } : scope, emit);
      else exec(n.otherwise, scope, emit);
    } else if (n.kind === 'range') {
      const v = evalPipe(n.pipe, scope);
      const entries: Array<[unknown, unknown]> = Array.isArray(v)
        ? v.map((x, k) => [k, x])
        : v && typeof v === 'object'
          ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])
          : [];
      if (!entries.length) exec(n.otherwise, scope, emit);
      for (const [k, x] of entries) {
        const vars = new Map(scope.vars);
        if (n.keyVar) vars.set(n.keyVar, k);
        if (n.valueVar) vars.set(n.valueVar, x);
        exec(n.body, { dot: x, vars }, emit);
      }
    }
  }
}

/** A pipeline: `cmd | cmd ...`; each command's result is the last argument of the next. */
function evalPipe(pipe: string, scope: Scope): unknown {
  let value: unknown;
  let first = true;
  for (const cmd of splitOutside(pipe, '|')) {
    const args = words(cmd.trim());
    if (!args.length) fail(`missing command in "${pipe}"`);
    const [head, ...rest] = args;
    const values = rest.map((a) => operand(a, scope));
    if (!first) values.push(value);
    if (head in FUNCS) value = FUNCS[head](...values);
    else if (values.length) fail(`can't give arguments to ${head}`);
    else value = operand(head, scope);
    first = false;
  }
  return value;
}

function operand(word: string, scope: Scope): unknown {
  if (word.startsWith('(')) return evalPipe(word.slice(1, -1), scope);
  if (word.startsWith('"') || word.startsWith('`')) return word.slice(1, -1).replace(/\\n/g, '\n').replace(/\\t/g, '\t').replace(/\\"/g, '"');
  if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word);
  if (word === 'true' || word === 'false') return word === 'true';
  if (word === '.') return scope.dot;
  if (word.startsWith('.')) return field(scope.dot, word.slice(1));
  if (word.startsWith('$')) {
    const [name, ...path] = word.split('.');
    if (!scope.vars.has(name)) fail(`undefined variable "${name}"`);
    return path.length ? field(scope.vars.get(name), path.join('.')) : scope.vars.get(name);
  }
  if (word in FUNCS) return FUNCS[word]();
  fail(`function "${word}" not defined`);
}

function field(obj: unknown, path: string): unknown {
  let v = obj;
  for (const part of path.split('.')) {
    if (v !== null && typeof v === 'object' && part in (v as object)) v = (v as Record<string, unknown>)[part];
    else if (v !== null && typeof v === 'object' && !/^[A-Z]/.test(part)) v = undefined;
    else fail(`can't evaluate field ${part}`);
  }
  return v;
}

/** Words of a command, keeping quoted strings whole. */
function words(cmd: string): string[] {
  return cmd.match(/"(?:[^"\\]|\\.)*"|`[^`]*`|\((?:[^()]|\([^()]*\))*\)|[^\s()]+/g) ?? [];
}

function splitOutside(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote = '';
  let depth = 0;
  for (const c of s) {
    if (quote) {
      if (c === quote) quote = '';
      cur += c;
    } else if (c === '"' || c === '`') {
      quote = c;
      cur += c;
    } else if (c === '(' || c === ')') {
      depth += c === '(' ? 1 : -1;
      cur += c;
    } else if (c === sep && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return !!v;
}

function show(v: unknown): string {
  if (v === null || v === undefined) return '<no value>';
  return typeof v === 'object' ? goPrint(v) : String(v);
}

const str = (v: unknown) => (typeof v === 'string' ? v : show(v));

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  upper: (v) => str(v).toUpperCase(),
  lower: (v) => str(v).toLowerCase(),
  title: (v) => str(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (list, sep) => (Array.isArray(list) ? list.map(str).join(str(sep)) : str(list)),
  split: (s, sep) => str(s).split(str(sep)),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : fail('len of a value without length')),
  index: (v, ...keys) => keys.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[str(k)] : undefined), v),
  println: (...a) => `${a.map(show).join(' ')}\n`,
  print: (...a) => a.map(show).join(''),
  printf: (format, ...a) => {
    let i = 0;
    return str(format).replace(/%([sdvq%])/g, (_m, c: string) => (c === '%' ? '%' : c === 'q' ? JSON.stringify(str(a[i++])) : show(a[i++])));
  },
  truncate: (v, n) => str(v).slice(0, Number(n)),
  pad: (v, left, right) => `${' '.repeat(Number(left))}${str(v)}${' '.repeat(Number(right))}`,
};

/** How Go's fmt prints maps and slices: `map[k:v]`, `[a b]`. */
function goPrint(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'object' && x !== null ? goPrint(x) : String(x))).join(' ')}]`;
  if (v && typeof v === 'object') {
    return `map[${Object.entries(v)
      .sort(([a], [b]) => byCodeUnit(a, b))
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
