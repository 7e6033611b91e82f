import { spawn } from 'node:child_process';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  archive: { type: 'bool', short: 'a', doc: 'Archive mode (copy all uid/gid information)' },
  'follow-link': { type: 'bool', short: 'L', doc: 'Always follow symbol link in SRC_PATH' },
  quiet: { type: 'bool', short: 'q', doc: 'Suppress progress output' },
} as const;

/** `CONTAINER:PATH` splits at the first colon unless the part before it looks like a local path. */
function splitTarget(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return { path: arg };
  const i = arg.indexOf(':');
  return i > 0 ? { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' } : { path: arg };
}

export const command: Command = {
  usage: 'berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n        berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  summary: 'Copy files/folders between a container and the local filesystem',
  flags: specs,
  local: true,
  async run(argv, env) {
    const { args, flags } = parseFlags(argv, specs);
    if (args.length !== 2) {
      env.stderr.write(`berth: "cp" requires exactly 2 arguments.\nSee 'berth cp --help'.\n`);
      return 1;
    }
    const src = splitTarget(args[0]);
    const dst = splitTarget(args[1]);
    if (!!src.container === !!dst.container) {
      env.stderr.write(`berth: copying between containers is not supported; one of the paths must be local and the other CONTAINER:PATH\n`);
      return 1;
    }
    return daemonCall(env, async () => {
      const client = env.client();
      if (src.container) {
        const srcContainer = encodeURIComponent(src.container);
        const wantBase = path.basename(path.posix.normalize('/' + src.path)) || '.';
        let srcPath = src.path;
        if (flags['follow-link']) {
          // As docker's CLI: a final symlink is replaced by its target, resolved again inside the container.
          const st = await client.call<{ mode: number; linkTarget: string }>('GET', `/containers/${srcContainer}/archive/stat`, { query: { path: srcPath } });
          if ((st.mode & 0o170000) === 0o120000) srcPath = path.posix.isAbsolute(st.linkTarget) ? st.linkTarget : path.posix.join(path.posix.dirname(srcPath), st.linkTarget);
        }
        const tar = await client.raw('GET', `/containers/${srcContainer}/archive`, { query: { path: srcPath } });
        if (dst.path === '-') {
          await pipeline(tar, env.stdout);
          return 0;
        }
        const dest = path.resolve(dst.path);
        const isDir = await stat(dest).then((s) => s.isDirectory(), () => false);
        const gotBase = path.basename(path.posix.normalize('/' + srcPath)) || '.';
        if (isDir && gotBase === wantBase) {
          await untar(tar, dest);
          return 0;
        }
        // DEST does not name a directory (or a followed link names the entry): extract next to it, then rename.
        const tmp = await mkdtemp(path.join(isDir ? dest : path.dirname(dest), '.berth-cp-'));
        try {
          await untar(tar, tmp);
          await rename(path.join(tmp, gotBase), isDir ? path.join(dest, wantBase) : dest);
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        return 0;
      }
      const container = encodeURIComponent(dst.container!);
      let targetDir = dst.path;
      let renameTo: string | undefined;
      const statPath = (p: string) =>
        client.call<{ mode: number; linkTarget: string }>('GET', `/containers/${container}/archive/stat`, { query: { path: p } }).catch((err) => {
          if ((err as { kind?: string }).kind === 'NotFound') return undefined;
          throw err;
        });
      let st = await statPath(dst.path);
      if (st && (st.mode & 0o170000) === 0o120000) {
        // The stat names a symlink itself: copy to what it points to, as docker's CLI does.
        targetDir = path.posix.isAbsolute(st.linkTarget) ? st.linkTarget : path.posix.join(path.posix.dirname(dst.path), st.linkTarget);
        st = await statPath(targetDir);
      }
      if (!st || (st.mode & 0o170000) !== 0o040000) {
        renameTo = path.posix.basename(targetDir);
        targetDir = path.posix.dirname(targetDir);
      }
      const upload = src.path === '-' ? env.stdin : tarOf(path.resolve(src.path), renameTo);
      await client.call('PUT', `/containers/${container}/archive`, { query: { path: targetDir }, upload });
      return 0;
    });
  },
};

function untar(tar: NodeJS.ReadableStream, dir: string): Promise<void> {
  const p = spawn('tar', ['-x', '-f', '-', '-C', dir, '--no-same-owner'], { stdio: ['pipe', 'inherit', 'inherit'] });
  return Promise.all([pipeline(tar, p.stdin), new Promise<void>((res, rej) => p.on('close', (c) => (c === 0 ? res() : rej(new Error(`tar exited with ${c}`)))))]).then(() => {});
}

function tarOf(src: string, renameTo?: string): Readable {
  const base = path.basename(src);
  const args = ['-c', '-f', '-', '-C', path.dirname(src)];
  if (renameTo) args.push(`--transform=s,^${base.replace(/[\\,.*[\]^$]/g, '\\$&')},${renameTo.replace(/[\\,&]/g, '\\$&')},`);
  args.push(base);
  const p = spawn('tar', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return p.stdout;
}
