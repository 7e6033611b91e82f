/**
 * The Dockerfile's small shell: how the words of an instruction are split and
 * how `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` (and the forms
 * without a colon, `${VAR:?message}`, `${VAR#glob}`, `${VAR%glob}` and their
 * doubled greedy forms) are expanded, with single quotes literal, double
 * quotes expanding, and the escape character (`\` or the `# escape`
 * directive's backtick) taking the next character literally. Docker's rules
 * (moby/buildkit frontend/dockerfile/shell); pure, no I/O.
 *
 * Example:
 *   processWord('${A:-x}/"$B"', name => vars[name], '\\')   // "x/b" when A unset, B=b
 */

export type Lookup = (name: string) => string | undefined;

/** Thrown for a malformed substitution; the caller adds the file, line and column. */
export class WordError extends Error {}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Split `s` into words on unquoted, unescaped whitespace, keeping quotes
 * and escapes as written (they are processed per word later), as the
 * Dockerfile parser does for ENV, LABEL, ARG, COPY and the like.
 */
export function splitWords(s: string, escape: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quote) {
      cur += ch;
      if (ch === escape && quote === '"' && i + 1 < s.length) cur += s[++i];
      else if (ch === quote) quote = '';
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escape && i + 1 < s.length) cur += s[++i];
    else if (ch === '"' || ch === "'") quote = ch;
  }
  if (quote) throw new WordError(`unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) out.push(cur);
  return out;
}

export interface ProcessResult {
  value: string;
  /** Names the word looked up, set or not (the cache keys on the args a step uses). */
  used: Set<string>;
}

/** Expand one word and remove its quotes and escapes. */
export function processWord(word: string, lookup: Lookup, escape: string, used: Set<string> = new Set()): string {
  const p = new WordProcessor(word, lookup, escape, used);
  return p.word('');
}

/** Expand the variables of a heredoc's content: quotes are text, the escape character only takes `$`, itself and a newline. */
export function processHeredoc(content: string, lookup: Lookup, escape: string, used: Set<string> = new Set()): string {
  return new WordProcessor(content, lookup, escape, used, true).word('');
}

/** Expand `s` and split the result into words (quoted text stays one word; expansions are not re-split inside quotes). */
export function processWords(s: string, lookup: Lookup, escape: string, used: Set<string> = new Set()): string[] {
  return splitWords(s, escape).map((w) => processWord(w, lookup, escape, used));
}

class WordProcessor {
  readonly #s: string;
  readonly #lookup: Lookup;
  readonly #escape: string;
  readonly #used: Set<string>;
  readonly #heredoc: boolean;
  #i = 0;

  constructor(s: string, lookup: Lookup, escape: string, used: Set<string>, heredoc = false) {
    this.#s = s;
    this.#lookup = lookup;
    this.#escape = escape;
    this.#used = used;
    this.#heredoc = heredoc;
  }

  /** Read until the end, or until an unquoted `stop` character (consumed). */
  word(stop: string): string {
    let out = '';
    const s = this.#s;
    while (this.#i < s.length) {
      const ch = s[this.#i];
      if (stop && ch === stop) {
        this.#i++;
        return out;
      }
      if (ch === this.#escape && this.#heredoc) {
        const next = s[this.#i + 1];
        if (next === '$' || next === this.#escape) out += next;
        else if (next !== '\n') out += ch + (next ?? '');
        this.#i += 2;
      } else if (ch === this.#escape) {
        this.#i++;
        if (this.#i < s.length) out += s[this.#i++];
        else out += ch;
      } else if (this.#heredoc && (ch === "'" || ch === '"')) {
        out += ch;
        this.#i++;
      } else if (ch === "'") {
        out += this.#single();
      } else if (ch === '"') {
        out += this.#double();
      } else if (ch === '$') {
        out += this.#dollar();
      } else {
        out += ch;
        this.#i++;
      }
    }
    if (stop) throw new WordError(`missing '${stop}' in "${s}"`);
    return out;
  }

  #single(): string {
    const s = this.#s;
    const end = s.indexOf("'", this.#i + 1);
    if (end < 0) throw new WordError('unterminated single quote');
    const v = s.slice(this.#i + 1, end);
    this.#i = end + 1;
    return v;
  }

  #double(): string {
    const s = this.#s;
    let out = '';
    this.#i++;
    while (this.#i < s.length) {
      const ch = s[this.#i];
      if (ch === '"') {
        this.#i++;
        return out;
      }
      if (ch === this.#escape && this.#i + 1 < s.length) {
        const next = s[this.#i + 1];
        // Inside double quotes the escape only takes a quote, a dollar or itself.
        out += next === '"' || next === '$' || next === this.#escape ? next : ch + next;
        this.#i += 2;
      } else if (ch === '$') {
        out += this.#dollar();
      } else {
        out += ch;
        this.#i++;
      }
    }
    throw new WordError('unterminated double quote');
  }

  #name(): string {
    const s = this.#s;
    const start = this.#i;
    if (this.#i < s.length && NAME_START.test(s[this.#i])) {
      this.#i++;
      while (this.#i < s.length && NAME_CHAR.test(s[this.#i])) this.#i++;
    }
    return s.slice(start, this.#i);
  }

  #get(name: string): string | undefined {
    this.#used.add(name);
    return this.#lookup(name);
  }

  #dollar(): string {
    const s = this.#s;
    this.#i++;
    if (s[this.#i] !== '{') {
      const name = this.#name();
      if (!name) return '$';
      return this.#get(name) ?? '';
    }
    this.#i++;
    const name = this.#name();
    if (!name) throw new WordError(`bad substitution in "${s}": a variable name must follow '\${'`);
    const value = this.#get(name);
    const c = s[this.#i];
    if (c === '}') {
      this.#i++;
      return value ?? '';
    }
    let op = c ?? '';
    this.#i++;
    if (op === ':') {
      const m = s[this.#i];
      if (m !== '-' && m !== '+' && m !== '?') throw new WordError(`unsupported modifier ":${m ?? ''}" in "${s}"`);
      op += m;
      this.#i++;
    } else if ((op === '#' || op === '%') && s[this.#i] === op) {
      op += op;
      this.#i++;
    }
    if (!['-', '+', '?', ':-', ':+', ':?', '#', '##', '%', '%%'].includes(op)) throw new WordError(`unsupported modifier "${op}" in "${s}"`);
    const word = this.word('}');
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (op) {
      case ':-':
        return nonEmpty ? value! : word;
      case '-':
        return set ? value! : word;
      case ':+':
        return nonEmpty ? word : '';
      case '+':
        return set ? word : '';
      case ':?':
        if (!nonEmpty) throw new WordError(`${name}: ${word || 'is not set or empty'}`);
        return value!;
      case '?':
        if (!set) throw new WordError(`${name}: ${word || 'is not set'}`);
        return value!;
      default:
        return trimPattern(value ?? '', word, op);
    }
  }
}

function globRegExp(glob: string): string {
  return glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
}

function trimPattern(value: string, pattern: string, op: string): string {
  const re = new RegExp(`^(?:${globRegExp(pattern)})$`);
  // The shortest (single) or longest (doubled) prefix or suffix that matches goes.
  if (op === '#') {
    for (let i = 0; i <= value.length; i++) if (re.test(value.slice(0, i))) return value.slice(i);
  } else if (op === '##') {
    for (let i = value.length; i >= 0; i--) if (re.test(value.slice(0, i))) return value.slice(i);
  } else if (op === '%') {
    for (let i = value.length; i >= 0; i--) if (re.test(value.slice(i))) return value.slice(0, i);
  } else {
    for (let i = 0; i <= value.length; i++) if (re.test(value.slice(i))) return value.slice(0, i);
  }
  return value;
}
