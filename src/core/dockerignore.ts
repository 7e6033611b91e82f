/**
 * `.dockerignore` as Docker reads it (moby/patternmatcher): one pattern a
 * line, `#` comments, paths relative to the context root (a leading `/` is
 * dropped, `.` and `..` cleaned), Go's `filepath.Match` syntax (`*`, `?`,
 * `[a-z]`, `\` escapes) plus `**` for any number of directories, `!` to
 * make an exception. The last pattern that matches a path decides, and a
 * pattern that matches a directory matches everything under it. Pure; the
 * CLI filters the context it sends with it, the builder the context it
 * receives.
 *
 * Example:
 *   const m = new IgnoreMatcher(['*.log', '!keep.log', 'build/']);
 *   m.ignored('a.log') === true; m.ignored('keep.log') === false; m.ignored('build/x') === true
 */

interface Pattern {
  re: RegExp;
  exception: boolean;
  /** The pattern's first directory, for deciding whether an excluded directory may still hold an exception. */
  text: string;
}

export function parseIgnoreFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

function toRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]);
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else {
      re += escapeRe(ch);
    }
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(ch: string): string {
  return /[.+^${}()|[\]\\/*?]/.test(ch) ? `\\${ch}` : ch;
}

export class IgnoreMatcher {
  readonly #patterns: Pattern[];
  readonly hasExceptions: boolean;

  constructor(patterns: string[]) {
    this.#patterns = [];
    for (const raw of patterns) {
      let p = raw.trim();
      const exception = p.startsWith('!');
      if (exception) p = p.slice(1).trim();
      p = cleanPath(p);
      if (p === '') continue;
      this.#patterns.push({ re: toRegExp(p), exception, text: p });
    }
    this.hasExceptions = this.#patterns.some((p) => p.exception);
  }

  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /** Whether the context path `p` (relative, `/`-separated) is left out. */
  ignored(p: string): boolean {
    const path = cleanPath(p);
    if (path === '') return false;
    const parts = path.split('/');
    let out = false;
    for (const pat of this.#patterns) {
      let hit = false;
      // The path itself or any directory above it.
      for (let n = parts.length; n >= 1 && !hit; n--) hit = pat.re.test(parts.slice(0, n).join('/'));
      if (hit) out = !pat.exception;
    }
    return out;
  }

  /**
   * Whether an ignored directory must still be walked because an exception
   * could bring back something under it (Docker's check: an exception whose
   * pattern starts inside it, or has a wildcard).
   */
  mayHoldException(dir: string): boolean {
    const d = cleanPath(dir);
    return this.#patterns.some((p) => p.exception && (p.text.startsWith(d + '/') || /[*?[\\]/.test(p.text)));
  }
}
