import { berthError, type BerthError } from '../core/errors.ts';
import { splitWords, WordError } from './shell-words.ts';

/**
 * The Dockerfile parser, as Docker documents the format: parser directives
 * at the top (`# syntax=`, `# escape=`, `# check=`), comments, line
 * continuations with the escape character, heredocs (`<<EOF`, `<<-EOF`,
 * quoted terminators that turn expansion off) for RUN, COPY and ADD, JSON
 * ("exec") and shell forms, flags (`--from=`, `--mount=` ...), `ARG` before
 * the first `FROM`, and stages (`FROM image AS name`). Pure: a string in,
 * a `Dockerfile` out. Variables are not expanded here (that depends on the
 * build's args and the stage's ENV, see shell-words.ts); words are kept as
 * written. Anything malformed or unknown is an InvalidArgument whose message
 * starts with `FILE:LINE:COLUMN:`.
 *
 * Example:
 *   const df = parseDockerfile('FROM busybox AS base\nRUN echo hi\n', 'Dockerfile');
 *   df.stages[0].name === 'base'; df.stages[0].instructions[0].kind === 'RUN'
 */

export interface Position {
  file: string;
  line: number;
  column: number;
}

export interface Heredoc {
  /** The terminator word (`EOF`). */
  name: string;
  content: string;
  /** False when the terminator was quoted: no variable expansion in the content. */
  expand: boolean;
  /** `<<-`: leading tabs were stripped. */
  chomp: boolean;
}

export interface Flag {
  name: string;
  /** Undefined for a bare flag (`--link`). */
  value?: string;
}

interface Base {
  pos: Position;
  /** The instruction as written, continuations joined (history's `created_by` for docker's legacy builder). */
  original: string;
  flags: Flag[];
}

/** A command given as a JSON array (exec form) or as a string for the shell. */
export type CommandForm = { json: true; args: string[] } | { json: false; shell: string };

export type Instruction =
  | (Base & { kind: 'FROM'; image: string; stageName?: string; platform?: string })
  | (Base & { kind: 'RUN'; command: CommandForm; heredocs: Heredoc[] })
  | (Base & { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm })
  | (Base & { kind: 'SHELL'; args: string[] })
  | (Base & { kind: 'COPY' | 'ADD'; sources: string[]; dest: string; json: boolean; heredocs: Heredoc[] })
  | (Base & { kind: 'ENV' | 'LABEL'; pairs: Array<{ key: string; value: string }> })
  | (Base & { kind: 'ARG'; args: Array<{ key: string; value?: string }> })
  | (Base & { kind: 'EXPOSE' | 'VOLUME'; words: string[] })
  | (Base & { kind: 'USER' | 'WORKDIR' | 'STOPSIGNAL' | 'MAINTAINER'; word: string })
  | (Base & { kind: 'HEALTHCHECK'; none: boolean; command?: CommandForm })
  | (Base & { kind: 'ONBUILD'; trigger: string; instruction: Instruction });

export type InstructionKind = Instruction['kind'];

/** The instruction type of `kind` (one of a shared shape such as CMD's and ENTRYPOINT's). */
export type InstructionOf<K extends InstructionKind> = Instruction extends infer I ? (I extends { kind: infer Q } ? (K extends Q ? I : never) : never) : never;

export interface Stage {
  /** Index in the file. */
  index: number;
  /** The `AS` name, lowercased, when given. */
  name?: string;
  from: Extract<Instruction, { kind: 'FROM' }>;
  instructions: Instruction[];
}

export interface Dockerfile {
  file: string;
  directives: { syntax?: string; escape: string; check?: string };
  /** ARGs before the first FROM: usable in FROM lines, and declared again inside a stage to use there. */
  metaArgs: Array<Extract<Instruction, { kind: 'ARG' }>>;
  stages: Stage[];
}

const KINDS = new Set(['FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'ENV', 'LABEL', 'ARG', 'EXPOSE', 'VOLUME', 'USER', 'WORKDIR', 'STOPSIGNAL', 'MAINTAINER', 'HEALTHCHECK', 'ONBUILD']);

/** The flags each instruction takes; anything else is an error, as in Docker. */
const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Flags that may be given more than once. */
const REPEATABLE = new Set(['mount', 'exclude']);

const DIRECTIVE = /^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

export function parseError(pos: Position, message: string, cause?: unknown): BerthError {
  return berthError('InvalidArgument', `${pos.file}:${pos.line}:${pos.column}: ${message}`, cause);
}

interface LogicalLine {
  text: string;
  line: number;
  column: number;
}

export function parseDockerfile(source: string, file = 'Dockerfile'): Dockerfile {
  const lines = source.replace(/^\uFEFF/, '').split(/\r?\n/);
  const directives: Dockerfile['directives'] = { escape: '\\' };
  let n = 0;
  // Directives: only at the very top, before any other line, each once.
  const seen = new Set<string>();
  for (; n < lines.length; n++) {
    const m = DIRECTIVE.exec(lines[n]);
    if (!m) break;
    const key = m[1].toLowerCase();
    if (!KNOWN_DIRECTIVES.has(key)) break;
    const pos = { file, line: n + 1, column: 1 };
    if (seen.has(key)) throw parseError(pos, `only one "${key}" parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw parseError(pos, `invalid escape token '${m[2]}' does not match ${'`'} or \\`);
      directives.escape = m[2];
    } else {
      directives[key as 'syntax' | 'check'] = m[2];
    }
  }
  const escape = directives.escape;
  const df: Dockerfile = { file, directives, metaArgs: [], stages: [] };
  let stage: Stage | undefined;
  while (n < lines.length) {
    const logical = readLogicalLine(lines, n, escape);
    n = logical.next;
    if (!logical.line) continue;
    const { text, line, column } = logical.line;
    const pos = { file, line, column };
    const m = /^(\S+)\s*([\s\S]*)$/.exec(text)!;
    const word = m[1];
    const kind = word.toUpperCase();
    let heredocs: Heredoc[] = [];
    if (kind === 'RUN' || kind === 'COPY' || kind === 'ADD') {
      const read = readHeredocs(lines, n, m[2], pos);
      heredocs = read.heredocs;
      n = read.next;
    }
    const ins = parseInstruction(word, m[2], text, pos, escape, heredocs);
    if (ins.kind === 'FROM') {
      stage = { index: df.stages.length, from: ins, instructions: [], ...(ins.stageName ? { name: ins.stageName } : {}) };
      if (ins.stageName && df.stages.some((s) => s.name === ins.stageName)) throw parseError(pos, `duplicate stage name "${ins.stageName}"`);
      df.stages.push(stage);
    } else if (!stage) {
      if (ins.kind !== 'ARG') throw parseError(pos, `no FROM before ${ins.kind}: a Dockerfile must begin with FROM (only ARG and parser directives may come before it)`);
      df.metaArgs.push(ins);
    } else {
      stage.instructions.push(ins);
    }
  }
  if (df.stages.length === 0) throw parseError({ file, line: Math.max(1, lines.length), column: 1 }, 'the Dockerfile has no FROM: it must name a base image (or scratch)');
  return df;
}

/**
 * The next instruction's text, continuations joined: comment lines and empty
 * lines inside a continuation are dropped, as Docker drops them.
 */
function readLogicalLine(lines: string[], start: number, escape: string): { line?: LogicalLine; next: number } {
  let n = start;
  let text = '';
  let first: { line: number; column: number } | undefined;
  const cont = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  while (n < lines.length) {
    const raw = lines[n++];
    const trimmed = raw.replace(/^\s+/, '');
    if (trimmed.startsWith('#') || trimmed === '') continue;
    // The first line loses its indentation; a continuation keeps it, as Docker joins them.
    const piece = first ? raw : trimmed;
    if (!first) first = { line: n, column: raw.length - trimmed.length + 1 };
    if (cont.test(piece)) {
      text += piece.replace(cont, '');
      continue;
    }
    text += piece;
    break;
  }
  if (!first) return { next: n };
  return { line: { text: text.trim(), ...first }, next: n };
}

const HEREDOC = /^\d*<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2$/;

function readHeredocs(lines: string[], start: number, args: string, pos: Position): { heredocs: Heredoc[]; next: number } {
  // A JSON-form instruction has no heredocs, and only whole words start one (`echo '<<EOF'` does not).
  if (args.trimStart().startsWith('[')) return { heredocs: [], next: start };
  const heredocs: Heredoc[] = [];
  let n = start;
  for (const word of safeSplit(args)) {
    const m = HEREDOC.exec(word);
    if (!m) continue;
    const chomp = m[1] === '-';
    const name = m[3];
    const body: string[] = [];
    for (;;) {
      if (n >= lines.length) throw parseError(pos, `unterminated heredoc: no line "${name}" ends the heredoc that starts here`);
      let l = lines[n++];
      if (chomp) l = l.replace(/^\t+/, '');
      if (l === name) break;
      body.push(l);
    }
    heredocs.push({ name, content: body.length ? body.join('\n') + '\n' : '', expand: m[2] === '', chomp });
  }
  return { heredocs, next: n };
}

function safeSplit(s: string): string[] {
  try {
    return splitWords(s, '\\');
  } catch {
    return s.split(/\s+/);
  }
}

function splitFlags(rest: string, pos: Position, kind: string): { flags: Flag[]; rest: string } {
  const flags: Flag[] = [];
  let r = rest;
  for (;;) {
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=((?:"[^"]*"|'[^']*'|\S)*))?(?:\s+|$)/.exec(r);
    if (!m) break;
    const name = m[1];
    const allowed = FLAGS[kind] ?? [];
    if (!allowed.includes(name)) throw parseError(pos, `unknown flag: --${name} (${kind} takes ${allowed.length ? allowed.map((f) => `--${f}`).join(', ') : 'no flags'})`);
    if (!REPEATABLE.has(name) && flags.some((f) => f.name === name)) throw parseError(pos, `flag --${name} given more than once`);
    flags.push({ name, ...(m[2] !== undefined ? { value: unquote(m[2]) } : {}) });
    r = r.slice(m[0].length);
  }
  return { flags, rest: r };
}

function unquote(v: string): string {
  return /^(["']).*\1$/.test(v) ? v.slice(1, -1) : v;
}

/** A JSON array of strings, or undefined when `s` is not one (then it is shell form, as in Docker). */
function jsonArray(s: string): string[] | undefined {
  const t = s.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    return undefined;
  }
  return undefined;
}

function commandForm(rest: string): CommandForm {
  const json = jsonArray(rest);
  return json ? { json: true, args: json } : { json: false, shell: rest };
}

function words(rest: string, pos: Position, escape: string): string[] {
  try {
    return splitWords(rest, escape);
  } catch (err) {
    if (err instanceof WordError) throw parseError(pos, err.message, err);
    throw err;
  }
}

function keyValues(kind: 'ENV' | 'LABEL', rest: string, pos: Position, escape: string): Array<{ key: string; value: string }> {
  const ws = words(rest, pos, escape);
  if (ws.length === 0) throw parseError(pos, `${kind} requires at least one argument`);
  if (!ws[0].includes('=')) {
    // The legacy form `ENV KEY value with spaces`: one pair, the rest of the line its value.
    if (ws.length < 2) throw parseError(pos, `${kind} ${ws[0]}: a value is missing (write ${kind} ${ws[0]}=VALUE)`);
    const value = rest.trim().slice(ws[0].length).trim();
    return [{ key: ws[0], value }];
  }
  return ws.map((w) => {
    const i = w.indexOf('=');
    if (i < 0) throw parseError(pos, `${kind}: "${w}" is not of the form KEY=VALUE`);
    if (i === 0) throw parseError(pos, `${kind}: "${w}" has an empty key`);
    return { key: w.slice(0, i), value: w.slice(i + 1) };
  });
}

function parseInstruction(word: string, rawRest: string, original: string, pos: Position, escape: string, heredocs: Heredoc[]): Instruction {
  const kind = word.toUpperCase();
  if (!KINDS.has(kind)) throw parseError(pos, `unknown instruction: ${word}`);
  const { flags, rest } = splitFlags(rawRest.trim(), pos, kind);
  const base = { pos, original, flags };
  const need = (ok: boolean, what: string) => {
    if (!ok) throw parseError(pos, `${kind} ${what}`);
  };
  switch (kind) {
    case 'FROM': {
      const ws = words(rest, pos, escape);
      need(ws.length === 1 || (ws.length === 3 && ws[1].toLowerCase() === 'as'), 'takes an image and optionally "AS name": FROM [--platform=PLATFORM] IMAGE [AS NAME]');
      const stageName = ws[2]?.toLowerCase();
      if (stageName !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(stageName)) throw parseError(pos, `invalid stage name "${ws[2]}": it must start with a letter and hold only letters, digits, '-', '_' and '.'`);
      const platform = flags.find((f) => f.name === 'platform')?.value;
      return { ...base, kind, image: ws[0], ...(stageName ? { stageName } : {}), ...(platform ? { platform } : {}) };
    }
    case 'RUN':
      need(rest.trim() !== '' || heredocs.length > 0, 'requires a command');
      return { ...base, kind, command: commandForm(rest), heredocs };
    case 'CMD':
    case 'ENTRYPOINT':
      return { ...base, kind, command: commandForm(rest) };
    case 'SHELL': {
      const json = jsonArray(rest);
      need(!!json && json.length > 0, 'requires the JSON form: SHELL ["executable", "parameters"]');
      return { ...base, kind, args: json! };
    }
    case 'COPY':
    case 'ADD': {
      const json = jsonArray(rest);
      const ws = json ?? words(rest, pos, escape);
      need(ws.length >= 2, 'requires at least two arguments: a source and a destination');
      return { ...base, kind, sources: ws.slice(0, -1), dest: ws[ws.length - 1], json: !!json, heredocs };
    }
    case 'ENV':
    case 'LABEL':
      return { ...base, kind, pairs: keyValues(kind, rest, pos, escape) };
    case 'ARG': {
      const ws = words(rest, pos, escape);
      need(ws.length > 0, 'requires at least one argument: ARG NAME[=DEFAULT]');
      return {
        ...base,
        kind,
        args: ws.map((w) => {
          const i = w.indexOf('=');
          const key = i < 0 ? w : w.slice(0, i);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw parseError(pos, `ARG: invalid name "${key}"`);
          return i < 0 ? { key } : { key, value: w.slice(i + 1) };
        }),
      };
    }
    case 'EXPOSE':
    case 'VOLUME': {
      const json = kind === 'VOLUME' ? jsonArray(rest) : undefined;
      const ws = json ?? words(rest, pos, escape);
      need(ws.length > 0 && ws.every((w) => w !== ''), 'requires at least one argument');
      return { ...base, kind, words: ws };
    }
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
    case 'MAINTAINER': {
      const value = rest.trim();
      need(value !== '', 'requires exactly one argument');
      if (kind !== 'MAINTAINER') need(words(value, pos, escape).length === 1, 'requires exactly one argument');
      return { ...base, kind, word: value };
    }
    case 'HEALTHCHECK': {
      const t = rest.trim();
      const first = t.split(/\s+/)[0]?.toUpperCase();
      if (first === 'NONE') {
        need(t.split(/\s+/).length === 1 && flags.length === 0, 'NONE takes no arguments or flags');
        return { ...base, kind, none: true };
      }
      need(first === 'CMD', 'takes NONE or CMD: HEALTHCHECK [OPTIONS] CMD command');
      const cmd = t.slice(3).trim();
      need(cmd !== '', 'CMD requires a command');
      return { ...base, kind, none: false, command: commandForm(cmd) };
    }
    case 'ONBUILD': {
      const t = rest.trim();
      const m = /^(\S+)\s*([\s\S]*)$/.exec(t);
      need(!!m, 'requires an instruction');
      const inner = m![1].toUpperCase();
      if (inner === 'ONBUILD' || inner === 'FROM' || inner === 'MAINTAINER') throw parseError(pos, `${inner} is not allowed as an ONBUILD trigger`);
      const instruction = parseInstruction(m![1], m![2], t, pos, escape, []);
      return { ...base, kind, trigger: t, instruction };
    }
  }
  throw parseError(pos, `unknown instruction: ${word}`);
}

/** The value of flag `name`, the last one given. */
export function flagValue(ins: { flags: Flag[] }, name: string): string | undefined {
  const f = ins.flags.filter((x) => x.name === name);
  return f.length ? (f[f.length - 1].value ?? '') : undefined;
}
