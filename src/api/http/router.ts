/**
 * The small path router every HTTP front door shares. Patterns are split
 * on `/`: `:name` takes one segment, `*name` takes several (image names
 * contain slashes) and the pattern parts after it must match the tail.
 * The handler type is the door's own.
 *
 * Example: `r.add('GET', '/images/*name/json', h)` matches
 * `/images/library/busybox/json` with `{ name: 'library/busybox' }`.
 */
export class HttpRouter<H> {
  #routes: Array<{ method: string; parts: string[]; handler: H }> = [];

  add(method: string, pattern: string, handler: H): void {
    this.#routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
  }

  /** Every route, in the order added: for tests that go over all of a door's routes. */
  routes(): Array<{ method: string; pattern: string }> {
    return this.#routes.map((r) => ({ method: r.method, pattern: `/${r.parts.join('/')}` }));
  }

  match(method: string, pathname: string): { handler: H; params: Record<string, string> } | undefined {
    const parts = pathname.split('/').filter(Boolean);
    for (const r of this.#routes) {
      if (r.method !== method) continue;
      const params = matchParts(r.parts, parts);
      if (params) return { handler: r.handler, params };
    }
    return undefined;
  }
}

function matchParts(pattern: string[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p.startsWith('*')) {
      const tail = pattern.length - i - 1;
      const end = parts.length - tail;
      if (end <= i) return undefined;
      params[p.slice(1)] = parts.slice(i, end).map(decodeURIComponent).join('/');
      const rest = matchParts(pattern.slice(i + 1), parts.slice(end));
      return rest ? Object.assign(params, rest) : undefined;
    }
    if (i >= parts.length) return undefined;
    if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]);
    else if (p !== parts[i]) return undefined;
  }
  return pattern.length === parts.length ? params : undefined;
}
