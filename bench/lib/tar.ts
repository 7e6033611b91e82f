/** A minimal ustar writer: enough for the bench's generated layers. */
export interface TarItem {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  mode?: number;
  /** File content: a buffer, or chunks adding up to `size`. */
  data?: Buffer | (() => Iterable<Buffer>);
  size?: number;
  link?: string;
}

const MTIME = Math.floor(Date.parse('2026-01-01T00:00:00Z') / 1000);
const TYPE = { file: '0', hardlink: '1', symlink: '2', dir: '5' } as const;

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

export function tarHeader(item: TarItem, size: number): Buffer {
  const h = Buffer.alloc(512);
  let name = item.type === 'dir' && !item.path.endsWith('/') ? item.path + '/' : item.path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar: path too long: ${item.path}`);
  }
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, item.mode ?? (item.type === 'dir' ? 0o755 : item.type === 'symlink' ? 0o777 : 0o644));
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, MTIME);
  h.write('        ', 148, 8, 'ascii');
  h.write(TYPE[item.type], 156, 1, 'ascii');
  if (item.link) h.write(item.link, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** Yields the tar stream of `items`, adding the parent directories each path needs. */
export function* tarStream(items: Iterable<TarItem>): Generator<Buffer> {
  const dirs = new Set<string>();
  const ensureParents = function* (p: string): Generator<Buffer> {
    const parts = p.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!d || dirs.has(d)) continue;
      dirs.add(d);
      yield tarHeader({ path: d, type: 'dir' }, 0);
    }
  };
  for (const item of items) {
    yield* ensureParents(item.path);
    if (item.type === 'dir') {
      if (dirs.has(item.path)) continue;
      dirs.add(item.path);
    }
    if (item.type !== 'file') {
      yield tarHeader(item, 0);
      continue;
    }
    const data = item.data ?? Buffer.alloc(0);
    const size = Buffer.isBuffer(data) ? data.length : item.size!;
    yield tarHeader(item, size);
    let written = 0;
    for (const chunk of Buffer.isBuffer(data) ? [data] : data()) {
      written += chunk.length;
      yield chunk;
    }
    if (written !== size) throw new Error(`tar: ${item.path}: wrote ${written} bytes, header says ${size}`);
    if (size % 512) yield Buffer.alloc(512 - (size % 512));
  }
  yield Buffer.alloc(1024);
}
