import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A tar entry for tests; make-tar.py writes it with python's tarfile (pax format). */
export interface TarSpec {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  data?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  major?: number;
  minor?: number;
  mtime?: number;
  xattrs?: Record<string, string>;
}

export function makeTar(entries: TarSpec[]): Buffer {
  return execFileSync('python3', [join(import.meta.dirname, 'make-tar.py')], { input: JSON.stringify(entries), maxBuffer: 64 << 20 });
}

