import type { ApiClient } from '../api/native/client.ts';
import { CONTAINER_ID_HEADER, RunStreams, WARNINGS_HEADER } from '../api/native/client.ts';
import type { Duplex } from 'node:stream';
import type { ContainerConfig } from '../core/containers.ts';
import type { ProgressEvent } from '../core/images.ts';
import { attachStreams } from './attach.ts';
import type { CommandEnv } from './command.ts';
import { progressPrinter } from './progress.ts';
import type { Parsed } from './flags.ts';
import { readNamedFiles, type RunOptions, type RunOptionsEnv } from './run-options.ts';
import { readUserFile } from '../core/user-file.ts';

/**
 * The shared steps of `run` and `create`: pull the image when it is missing
 * (or always, with --pull always), create the container, and for `run`
 * attach, start and wait exactly as docker's CLI orders them, so that no
 * output is lost and the exit code is the container's.
 */
export async function createContainer(env: CommandEnv, opts: RunOptions): Promise<string> {
  checkCidfile(opts);
  const client = env.client();
  if (opts.pull === 'always') await pullImage(env, opts.config.image, opts.platform);
  const create = () => client.call<{ id: string; warnings: string[] }>('POST', '/containers/create', { body: opts.config });
  let res: { id: string; warnings: string[] };
  try {
    res = await create();
  } catch (err) {
    const missing = (err as { kind?: string }).kind === 'NotFound' && /No such image/.test((err as Error).message);
    if (!missing || opts.pull === 'never') throw err;
    env.stderr.write(`Unable to find image '${opts.config.image}' locally\n`);
    await pullImage(env, opts.config.image, opts.platform);
    res = await create();
  }
  for (const w of [...opts.warnings, ...res.warnings]) env.stderr.write(`WARNING: ${w}\n`);
  writeCidfile(opts, res.id);
  return res.id;
}

/** docker's --cidfile: refused up front when the file exists, so no container is made for nothing. */
function checkCidfile(opts: RunOptions): void {
  if (opts.cidfile && process.getBuiltinModule('node:fs').existsSync(opts.cidfile)) {
    throw Object.assign(new Error(`Container ID file found, make sure the other container isn't running or delete ${opts.cidfile}`), { exit: 125 });
  }
}

function writeCidfile(opts: RunOptions, id: string): void {
  if (!opts.cidfile || !id) return;
  try {
    process.getBuiltinModule('node:fs').writeFileSync(opts.cidfile, id, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    throw Object.assign(new Error(`failed to write the container ID to ${opts.cidfile}: ${(err as Error).message}`), { exit: 125 });
  }
}

/**
 * `run` in one request (`POST /containers/run`): create, then for a
 * detached container start it, or else attach, start and wait, the exit
 * code arriving as the stream's last frame. Pulls a missing image first, as
 * createContainer does. Returns the exit code of `berth run`.
 */
export async function runContainer(env: CommandEnv, opts: RunOptions, attach: { sigProxy: boolean; detachKeys?: number[] }): Promise<number> {
  checkCidfile(opts);
  const client = env.client();
  const cfg = opts.config;
  if (cfg.tty && !opts.detach && env.stdout.isTTY && env.stdout.rows && env.stdout.columns) cfg.consoleSize = { height: env.stdout.rows, width: env.stdout.columns };
  if (opts.pull === 'always') await pullImage(env, cfg.image, opts.platform);
  const request = <T>(fn: () => Promise<T>): Promise<T> =>
    fn().catch(async (err) => {
      const missing = (err as { kind?: string }).kind === 'NotFound' && /No such image/.test((err as Error).message);
      if (!missing || opts.pull === 'never') throw err;
      env.stderr.write(`Unable to find image '${cfg.image}' locally\n`);
      await pullImage(env, cfg.image, opts.platform);
      return fn();
    });
  const warn = (warnings: string[]) => {
    for (const w of [...opts.warnings, ...warnings]) env.stderr.write(`WARNING: ${w}\n`);
  };
  const failed = (err: unknown): number => {
    const kind = (err as { kind?: string }).kind;
    env.stderr.write(`berth: ${kind === 'Unavailable' ? '' : 'Error response from daemon: '}${(err as Error).message}\n`);
    return (err as { exitCode?: number }).exitCode ?? 125;
  };
  if (opts.detach) {
    let res: { id: string; warnings: string[] };
    try {
      res = await request(() => client.call<{ id: string; warnings: string[] }>('POST', '/containers/run', { body: cfg }));
    } catch (err) {
      return failed(err);
    }
    warn(res.warnings);
    writeCidfile(opts, res.id);
    env.stdout.write(`${res.id}\n`);
    return 0;
  }
  let opened: { socket: Duplex; headers: Record<string, string> };
  try {
    opened = await request(() => client.upgradeWithHeaders('POST', '/containers/run', { query: { attach: '1' }, body: cfg }));
  } catch (err) {
    return failed(err);
  }
  const id = opened.headers[CONTAINER_ID_HEADER] ?? '';
  warn(parseWarnings(opened.headers[WARNINGS_HEADER]));
  writeCidfile(opts, id);
  let last: { exitCode: number; error?: string } | undefined;
  const attached = attachStreams(env, client, opened.socket, {
    tty: !!cfg.tty,
    stdin: !!cfg.openStdin,
    resizePath: `/containers/${id}/resize`,
    signalTarget: attach.sigProxy ? id : undefined,
    detachKeys: attach.detachKeys,
    framed: true,
    onFrame: (stream, data) => {
      if (stream === RunStreams.exit) last = JSON.parse(data.toString('utf8')) as typeof last;
      else if (stream === RunStreams.systemErr) env.stderr.write(data);
    },
  });
  attached.resize();
  const { detached } = await attached.done;
  if (detached) {
    env.stderr.write('\nread escape sequence\n');
    return 0;
  }
  if (!last) {
    env.stderr.write('berth: berthd closed the connection before the container exited\n');
    return 125;
  }
  if (last.error) env.stderr.write(`berth: Error response from daemon: ${last.error}\n`);
  return last.exitCode;
}

function parseWarnings(header: string | undefined): string[] {
  try {
    const w = JSON.parse(header ?? '[]') as unknown;
    return Array.isArray(w) ? w.map(String) : [];
  } catch {
    return [];
  }
}

async function pullImage(env: CommandEnv, ref: string, platform?: string): Promise<void> {
  const printer = progressPrinter(env.stderr as NodeJS.WriteStream);
  for await (const ev of env.client().stream<ProgressEvent>('POST', '/images/pull', { query: { ref, platform } })) {
    if (!ev.id && !ev.status.includes(' ') && !ev.status.startsWith('Digest')) continue;
    printer.onEvent(ev);
  }
  printer.finish();
}

/** Exit code of a container that failed to start, as the daemon recorded it (126, 127, or 125). */
export async function startFailureExit(client: ApiClient, id: string): Promise<number> {
  try {
    const c = await client.call<{ State: { ExitCode: number } }>('GET', `/containers/${id}/json`);
    return c.State.ExitCode > 0 ? c.State.ExitCode : 125;
  } catch {
    return 125;
  }
}

/** Attach, start, wait: the foreground half of `run` and of `start -a`. */
export async function runAttached(env: CommandEnv, id: string, cfg: Pick<ContainerConfig, 'tty' | 'openStdin' | 'autoRemove'>, opts: { start: boolean; sigProxy: boolean; detachKeys?: number[] }): Promise<number> {
  const client = env.client();
  const failed = async (err: unknown) => {
    env.stderr.write(`berth: Error response from daemon: ${(err as Error).message}\n`);
    const code = await startFailureExit(client, id);
    if (cfg.autoRemove) await client.call('DELETE', `/containers/${id}`, { query: { force: true } }).catch(() => {});
    return code;
  };
  let sock;
  try {
    // Attaching to a created container makes the daemon create its task, so a bad command fails here.
    sock = await client.upgrade('POST', `/containers/${id}/attach`, { query: { stdin: !!cfg.openStdin, stdout: true, stderr: true } });
  } catch (err) {
    return failed(err);
  }
  // Ask for the exit before starting, so a container that exits at once is not missed.
  const exit = client.call<{ exitCode: number }>('POST', `/containers/${id}/wait`, { query: { condition: cfg.autoRemove ? 'removed' : 'next-exit' } });
  exit.catch(() => {});
  const attached = attachStreams(env, client, sock, { tty: !!cfg.tty, stdin: !!cfg.openStdin, resizePath: `/containers/${id}/resize`, signalTarget: opts.sigProxy ? id : undefined, detachKeys: opts.detachKeys });
  if (opts.start) {
    try {
      await client.call('POST', `/containers/${id}/start`);
    } catch (err) {
      sock.destroy();
      return failed(err);
    }
  }
  attached.resize();
  const { detached } = await attached.done;
  if (detached) {
    env.stderr.write('\nread escape sequence\n');
    return 0;
  }
  try {
    return (await exit).exitCode;
  } catch (err) {
    env.stderr.write(`berth: ${(err as Error).message}\n`);
    return 125;
  }
}

/** What toContainerConfig needs of the command's environment, with the files the options name already read (bounded, never blocking). */
export async function runOptionsEnv(env: CommandEnv, parsed: Parsed): Promise<RunOptionsEnv> {
  const readFile = await readNamedFiles(parsed, env.cwd, (file, name) => readUserFile(file, { name, signal: env.signal }));
  return { vars: env.env, cwd: env.cwd, readFile };
}

/** docker's --detach-keys: "ctrl-p,ctrl-q" (ctrl-a..z, ctrl-@, ctrl-[ \\ ] ^ _) or single characters. */
export function parseDetachKeys(s: string | undefined): number[] | undefined {
  if (!s) return undefined;
  return s.split(',').map((k) => {
    if (k.length === 1) return k.charCodeAt(0);
    const m = /^ctrl-([a-z@[\\\]^_])$/i.exec(k);
    if (m) return m[1].toUpperCase().charCodeAt(0) - 64;
    throw Object.assign(new Error(`invalid detach keys: ${s}`), { exit: 125 });
  });
}
