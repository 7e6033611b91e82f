import { lstat, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { RUN_LOCALLY, type Command, type CommandEnv } from '../command.ts';
import { IgnoreMatcher, parseIgnoreFile } from '../../core/dockerignore.ts';
import { readUserFile } from '../../core/user-file.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { looksLikeArchive, packDirectory, packDockerfileOnly, type PackedContext } from '../build-context.ts';
import type { BuildEvent } from '../../core/build.ts';
import { buildPrinter } from '../build-progress.ts';

const specs = {
  tag: { type: 'list', short: 't', doc: 'Name and optionally a tag in the "name:tag" format' },
  file: { type: 'string', short: 'f', doc: 'Name of the Dockerfile (default: "PATH/Dockerfile"); "-" reads it from stdin' },
  'build-arg': { type: 'list', doc: 'Set build-time variables' },
  label: { type: 'list', doc: 'Set metadata for an image' },
  iidfile: { type: 'string', doc: 'Write the image ID to the file' },
  target: { type: 'string', doc: 'Set the target build stage to build' },
  'no-cache': { type: 'bool', doc: 'Do not use cache when building the image' },
  pull: { type: 'bool', doc: 'Always attempt to pull a newer version of the image' },
  'cache-from': { type: 'list', doc: 'Images to consider as cache sources' },
  network: { type: 'string', doc: 'Set the networking mode for the RUN instructions during build (default, none)' },
  quiet: { type: 'bool', short: 'q', doc: 'Suppress the build output and print image ID on success' },
  progress: { type: 'string', default: 'auto', doc: 'Set type of progress output (auto, plain, tty)' },
  platform: { type: 'string', doc: 'Set platform (only the host\'s)' },
  rm: { type: 'bool', default: true, doc: 'Remove intermediate containers after a successful build (always)' },
  'force-rm': { type: 'bool', doc: 'Always remove intermediate containers (always)' },
} as const;

export const command: Command = {
  usage: 'berth build [OPTIONS] PATH | -',
  summary: 'Build an image from a Dockerfile',
  flags: specs,
  args: ['none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length !== 1) {
      env.stderr.write(`"berth build" requires exactly 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    const progress = String(flags.progress);
    if (!['auto', 'plain', 'tty', 'quiet'].includes(progress)) {
      env.stderr.write(`invalid --progress "${progress}": want auto, plain, tty or quiet\n`);
      return 125;
    }
    const buildArgs: string[] = [];
    for (const a of flags['build-arg'] as string[]) {
      const i = a.indexOf('=');
      // As docker: `--build-arg NAME` takes NAME from the environment, and is dropped when unset there.
      if (i < 0) {
        if (env.env[a] !== undefined) buildArgs.push(`${a}=${env.env[a]}`);
      } else buildArgs.push(a);
    }
    for (const l of flags.label as string[]) {
      if (!l.includes('=') || l.startsWith('=')) {
        env.stderr.write(`invalid --label "${l}": want KEY=VALUE\n`);
        return 125;
      }
    }
    // Hosted by berthd, a directory is read where it is; anything else runs in the user's own process and travels as a tar.
    let packed: PackedContext | { dir: string; dockerfile: string } | undefined;
    if (env.inDaemon) {
      packed = await inPlace(env, args[0], flags.file as string | undefined);
      if (!packed) return RUN_LOCALLY;
    }
    try {
      packed ??= await context(env, args[0], flags.file as string | undefined);
    } catch (err) {
      env.stderr.write(`${(err as Error).message}\n`);
      return 1;
    }
    const sent = packed;
    return daemonCall(env, async () => {
      const quiet = !!flags.quiet || progress === 'quiet';
      const mode = progress === 'auto' ? ((env.stderr as { isTTY?: boolean }).isTTY ? 'tty' : 'plain') : progress === 'quiet' ? 'plain' : progress;
      const printer = buildPrinter(env.stderr, { mode: mode as 'plain' | 'tty', quiet });
      let id = '';
      try {
        for await (const ev of env.client().stream<BuildEvent>('POST', '/build', {
          ...('tar' in sent ? { upload: sent.tar } : {}),
          query: {
            ...('dir' in sent ? { contextdir: sent.dir } : {}),
            t: flags.tag as string[],
            dockerfile: sent.dockerfile,
            buildarg: buildArgs,
            label: flags.label as string[],
            target: flags.target as string | undefined,
            nocache: flags['no-cache'] ? '1' : undefined,
            pull: flags.pull ? '1' : undefined,
            platform: flags.platform as string | undefined,
            cachefrom: flags['cache-from'] as string[],
            network: flags.network as string | undefined,
          },
        })) {
          printer.onEvent(ev);
          if (ev.kind === 'result') id = ev.id;
        }
      } catch (err) {
        printer.failed();
        throw err;
      }
      printer.finish();
      if (flags.iidfile) {
        // As docker: whatever was there goes first; the new file is created, never opened through what was in its place.
        const file = path.resolve(env.cwd, flags.iidfile as string);
        await rm(file, { force: true });
        await writeFile(file, id, { flag: 'wx' });
      }
      if (quiet) env.stdout.write(`${id}\n`);
      return 0;
    });
  },
};

async function context(env: CommandEnv, arg: string, file: string | undefined): Promise<PackedContext> {
  const resolve = (p: string) => path.resolve(env.cwd, p);
  if (arg === '-') {
    if (file === '-') throw new Error('invalid argument: can\'t use stdin for both build context and dockerfile');
    const stdin = env.stdin as unknown as Readable;
    const head = await readHead(stdin, 512);
    if (looksLikeArchive(head.bytes)) return { tar: head.stream, dockerfile: file ?? 'Dockerfile' };
    const chunks: Buffer[] = [];
    for await (const c of head.stream) chunks.push(c as Buffer);
    return packDockerfileOnly(Buffer.concat(chunks).toString('utf8'));
  }
  if (/^(https?|git):\/\/|^git@/.test(arg)) throw new Error(`unable to prepare context: remote contexts (${arg}) are not supported by berth; clone or download it first`);
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of env.stdin as unknown as Readable) chunks.push(c as Buffer);
    return packDirectory(resolve(arg), { dockerfileText: Buffer.concat(chunks).toString('utf8') });
  }
  return packDirectory(resolve(arg), { dockerfile: file === undefined ? undefined : resolve(file) });
}

/**
 * The context directory and the Dockerfile's path in it, when berthd can
 * read them in place: a directory, the Dockerfile inside it, and no
 * `.dockerignore` exception (`!`) to honour. Undefined otherwise: stdin,
 * a Dockerfile from elsewhere, a path that is not a directory (the tar path
 * gives docker's messages).
 */
async function inPlace(env: CommandEnv, arg: string, file: string | undefined): Promise<{ dir: string; dockerfile: string } | undefined> {
  if (arg === '-' || file === '-' || /^(https?|git):\/\/|^git@/.test(arg)) return undefined;
  const dir = path.resolve(env.cwd, arg);
  if (!(await lstat(dir).catch(() => undefined))?.isDirectory()) return undefined;
  let dockerfile = 'Dockerfile';
  if (file !== undefined) {
    const rel = path.relative(dir, path.resolve(env.cwd, file));
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    dockerfile = rel.split(path.sep).join('/');
  }
  if (!(await lstat(path.join(dir, dockerfile)).catch(() => undefined))) return undefined;
  for (const name of [`${dockerfile}.dockerignore`, '.dockerignore']) {
    if (!(await lstat(path.join(dir, name)).catch(() => undefined))) continue;
    const text = await readUserFile(path.join(dir, name), { ...(env.signal ? { signal: env.signal } : {}) }).catch(() => undefined);
    if (text === undefined || new IgnoreMatcher(parseIgnoreFile(text)).hasExceptions) return undefined;
    break;
  }
  return { dir, dockerfile };
}

/** The first `n` bytes of a stream, and a stream that still yields all of it. */
async function readHead(stream: Readable, n: number): Promise<{ bytes: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let got = 0;
  const it = stream[Symbol.asyncIterator]();
  let ended = false;
  while (got < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    chunks.push(r.value as Buffer);
    got += (r.value as Buffer).length;
  }
  const out = new PassThrough();
  out.write(Buffer.concat(chunks));
  if (ended) out.end();
  else
    void (async () => {
      try {
        for (let r = await it.next(); !r.done; r = await it.next()) if (!out.write(r.value)) await new Promise((res) => out.once('drain', res));
        out.end();
      } catch (err) {
        out.destroy(err as Error);
      }
    })();
  return { bytes: Buffer.concat(chunks).subarray(0, n), stream: out };
}
