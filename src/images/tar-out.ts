/**
 * The few ustar headers `save` needs: short, ASCII names (`blobs/sha256/<hex>`,
 * `index.json`), files and directories, owned by root.
 */
const BLOCK = 512;

export const TAR_END_BLOCKS = Buffer.alloc(2 * BLOCK);

export function tarPad(size: number): Buffer {
  const rem = size % BLOCK;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK - rem);
}

function octal(buf: Buffer, n: number, offset: number, length: number): void {
  buf.write(n.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

export function tarFileHeader(e: { name: string; type: 'file' | 'dir'; size: number; mtime: number }): Buffer {
  if (Buffer.byteLength(e.name) > 100) throw new Error(`tar name too long: ${e.name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(e.name, 0, 100, 'utf8');
  octal(h, e.type === 'dir' ? 0o755 : 0o644, 100, 8);
  octal(h, 0, 108, 8);
  octal(h, 0, 116, 8);
  octal(h, e.type === 'dir' ? 0 : e.size, 124, 12);
  octal(h, e.mtime, 136, 12);
  h.write('        ', 148, 8, 'ascii');
  h.write(e.type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}
