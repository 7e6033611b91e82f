import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A maker of build context directories: each call writes the files given
 * (names may hold `/`) into a new directory under `parent()` and returns it.
 * `parent` is read at each call, so a suite can make the maker before its
 * `before` hook has created the temporary directory.
 *
 *   const context = contextMaker(() => tmp);
 *   const dir = context({ Dockerfile: 'FROM busybox\n', 'src/a.txt': 'a\n' });
 */
export function contextMaker(parent: () => string): (files: Record<string, string>) => string {
  let n = 0;
  return (files) => {
    const dir = path.join(parent(), `ctx${n++}`);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), text);
    }
    return dir;
  };
}
