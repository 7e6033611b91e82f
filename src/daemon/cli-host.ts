import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, createReadStream, createWriteStream, fstatSync, openSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import tty from 'node:tty';
import { RUN_LOCALLY, runCli, type CliIo } from '../cli/cli.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { fileStatusFlags, peerCredentials, pidfdGetfd, pidfdOpen, setFileStatusFlags } from '../core/sys.ts';
import { sameMountNamespace, socketFd } from '../api/native/peer.ts';
import type { Router } from '../api/native/server.ts';

/**
 * The CLI host: berthd runs a berth command line for the thin native client
 * (native/cli.c), so a command costs no Node start-up of its own.
 *
 * The client sends `POST /cli` with its argv, environment and working
 * directory, and waits. berthd takes copies of the client's stdin, stdout and
 * stderr with pidfd_getfd(2), so output goes straight to the user's terminal,
 * pipe or file, and runs the command with them exactly as main.ts would in a
 * process of its own. After the 101 the client sends one byte per signal it
 * receives (SIGINT, SIGTERM, SIGWINCH, ...); berthd answers with one line,
 * `exit N`, `signal N` (the client then dies of that signal) or `local` (the
 * command is marked local: the client runs it in its own Node process), and
 * closes.
 *
 * Only root's clients in berthd's own mount namespace are served: the
 * command runs with berthd's rights, so a user let onto the socket by
 * `socket_group` must not have it read or write files by path as root, and
 * a client in a container that was handed the socket means its own files by
 * its paths. Everyone else gets 403 and the client falls back to running the
 * command in its own process.
 */
export function registerCliHost(router: Router, opts: { address: string; log: Logger }): void {
  const host = `unix://${opts.address}`;
  isolateHostedFailures(opts.log);
  router.add('POST', '/cli', async (req) => {
    if (!req.raw.headers.upgrade) throw berthError('InvalidArgument', 'POST /cli needs Connection: Upgrade');
    const peer = peerCredentials(socketFd(req.raw.socket));
    if (peer.uid !== 0) throw berthError('PermissionDenied', 'berthd hosts commands for root only');
    // Paths in a command (its cwd, --env-file, --cidfile) are the client's: they mean the same here only in the same mount namespace.
    if (!sameMountNamespace(peer.pid)) throw berthError('PermissionDenied', 'berthd hosts commands only for clients that see its file system');
    const body = parseRequest(await req.json());
    // The client blocks until we answer, so its pid cannot be reused before pidfd_open pins it.
    const stdio = new ClientStdio(pidfdOpen(peer.pid));
    const sock = req.upgrade();
    serve(sock, body, stdio, host, req.ctx.signal, opts.log);
  });
}

/** The hosted command whose code is running: every callback and promise it starts carries it. */
const hostedCommand = new AsyncLocalStorage<{ fail(err: unknown): void }>();
let isolating = false;

/**
 * An exception that escapes a hosted command (a throw in one of its
 * callbacks, a rejection nobody handles) ends that command with 125, as it
 * would have ended a berth process of its own, and not berthd. Anything else
 * stays fatal: it is reported and berthd exits, as Node would.
 */
export function isolateHostedFailures(log: Logger): void {
  if (isolating) return;
  isolating = true;
  process.on('uncaughtException', (err, origin) => {
    const command = hostedCommand.getStore();
    if (command) return void command.fail(err);
    log.error(origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception', { err });
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}

/** Runs `fn` as the code of a hosted command (for isolateHostedFailures). */
export function asHostedCommand<T>(fail: (err: unknown) => void, fn: () => T): T {
  return hostedCommand.run({ fail }, fn);
}

interface CliRequest {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

function parseRequest(body: unknown): CliRequest {
  const b = body as { argv?: unknown; env?: unknown; cwd?: unknown } | undefined;
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
  if (!b || !strings(b.argv) || !strings(b.env) || typeof b.cwd !== 'string' || !path.isAbsolute(b.cwd)) {
    throw berthError('InvalidArgument', 'a CLI request needs argv and env (lists of strings) and an absolute cwd');
  }
  const env: NodeJS.ProcessEnv = {};
  for (const kv of b.env) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { argv: b.argv, env, cwd: b.cwd };
}

type Outcome = { exit: number } | { signal: number } | { local: true };

/** Signals whose default action is not to end the process: they go to handlers or nowhere. */
const IGNORED_BY_DEFAULT = new Set(['SIGWINCH', 'SIGCHLD', 'SIGURG', 'SIGCONT', 'SIGTSTP']);

function serve(sock: Duplex, req: CliRequest, stdio: ClientStdio, host: string, requestSignal: AbortSignal, log: Logger): void {
  const abort = new AbortController();
  const clientGone = new AbortController();
  const handlers = new Map<string, Set<() => void>>();
  let settled = false;

  const finish = async (outcome: Outcome | undefined) => {
    if (settled) return;
    settled = true;
    requestSignal.removeEventListener('abort', onGone);
    abort.abort(berthError('Canceled', 'the berth command ended'));
    // A command that ran to its end has its output flushed before the client exits; one ended by a signal does not wait.
    await stdio.release(outcome !== undefined && 'exit' in outcome && !clientGone.signal.aborted, clientGone.signal);
    if (outcome && !sock.destroyed) {
      sock.end('local' in outcome ? 'local\n' : 'exit' in outcome ? `exit ${outcome.exit}\n` : `signal ${outcome.signal}\n`);
    } else sock.destroy();
  };

  const onGone = () => {
    clientGone.abort();
    void finish(undefined);
  };
  requestSignal.addEventListener('abort', onGone, { once: true });
  // The client never shuts down its side while it waits: an end of its stream means it is gone
  // (node:http keeps such a socket half-open rather than closing it).
  sock.once('end', onGone);
  sock.once('close', onGone);
  stdio.onBrokenPipe = () => void finish({ signal: osConstants.signals.SIGPIPE });

  sock.on('data', (bytes: Buffer) => {
    for (const signo of bytes) {
      const name = signalName(signo);
      if (!name) continue;
      if (name === 'SIGWINCH') stdio.refreshSize();
      // The client stops itself after sending SIGTSTP and sends SIGCONT once continued: while it
      // is stopped its command neither writes to the terminal nor reads from it, as if stopped too.
      else if (name === 'SIGTSTP') stdio.suspend();
      else if (name === 'SIGCONT') stdio.resume();
      const hs = handlers.get(name);
      if (hs?.size) for (const h of [...hs]) h();
      else if (!IGNORED_BY_DEFAULT.has(name)) void finish({ signal: signo });
    }
  });
  sock.on('error', onGone);

  const io: CliIo = {
    get stdout() {
      return stdio.writable(1);
    },
    get stderr() {
      return stdio.writable(2);
    },
    get stdin() {
      return stdio.readable();
    },
    env: req.env,
    cwd: req.cwd,
    stdinIsTTY: () => stdio.isTTY(0),
    onSignal(signal, handler) {
      let hs = handlers.get(signal);
      if (!hs) handlers.set(signal, (hs = new Set()));
      hs.add(handler);
      return () => hs.delete(handler);
    },
    hosted: { host, signal: abort.signal },
  };

  const failed = (err: unknown) => {
    log.error('hosted berth command failed', { err, argv: req.argv });
    try {
      if (!settled) stdio.writable(2).write(`berth: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    } catch {
      // The user's stderr is what failed: the exit code says enough.
    }
    return finish({ exit: 125 });
  };
  asHostedCommand(failed, () => {
    runCli(req.argv, io).then((code) => finish(code === RUN_LOCALLY ? { local: true } : { exit: code }), failed);
  });
}

function signalName(signo: number): NodeJS.Signals | undefined {
  for (const [name, n] of Object.entries(osConstants.signals)) if (n === signo) return name as NodeJS.Signals;
  return undefined;
}

type Stream = NodeJS.WriteStream | NodeJS.ReadStream;

/**
 * The client's stdin, stdout and stderr, taken only when a command first
 * touches them. Each becomes the stream Node would build for a process of its
 * own (a tty stream, a socket for a pipe, a file stream), except that a
 * terminal is written without blocking: a user's ctrl-s must not stop berthd.
 */
class ClientStdio {
  readonly #pidfd: number;
  readonly #fds = new Map<number, number>();
  readonly #streams = new Map<number, Stream>();
  /** Status flags to put back on a pipe or socket we made non-blocking: its description is shared with the client's shell. */
  readonly #restoreFlags = new Map<number, number>();
  onBrokenPipe: () => void = () => {};
  /** Set once released: a command still unwinding after its client left writes into the void. */
  #released = false;

  constructor(pidfd: number) {
    this.#pidfd = pidfd;
    // Copying another process's descriptors needs ptrace rights (a Yama scope or an LSM may deny
    // them even to root): find out now, while the client can still run the command itself,
    // rather than have its output vanish.
    for (const n of [2, 1, 0]) {
      try {
        this.#fds.set(n, pidfdGetfd(pidfd, n));
        return;
      } catch (err) {
        if (!hasErrno(err, 'EBADF')) {
          closeSync(pidfd);
          throw berthError('PermissionDenied', `berthd cannot take the client's stdio: ${(err as Error).message}`);
        }
      }
    }
  }

  #fd(n: number): number {
    let fd = this.#fds.get(n);
    if (fd === undefined) {
      try {
        fd = pidfdGetfd(this.#pidfd, n);
      } catch {
        // The client's descriptor is closed: like Node, read nothing and write into the void.
        fd = openSync('/dev/null', n === 0 ? 'r' : 'w');
      }
      this.#fds.set(n, fd);
    }
    return fd;
  }

  isTTY(n: number): boolean {
    return !this.#released && tty.isatty(this.#fd(n));
  }

  writable(n: 1 | 2): NodeJS.WriteStream {
    if (this.#released) return new Writable({ write: (_chunk, _enc, cb) => cb() }) as unknown as NodeJS.WriteStream;
    let s = this.#streams.get(n) as NodeJS.WriteStream | undefined;
    if (s) return s;
    const fd = this.#fd(n);
    if (tty.isatty(fd)) {
      // libuv reopens the terminal, so this description is ours alone to make non-blocking.
      s = new tty.WriteStream(fd);
      (s as unknown as { _handle: { setBlocking(b: boolean): void } })._handle.setBlocking(false);
    } else if (isPipeOrSocket(fd)) {
      this.#restoreFlags.set(n, fileStatusFlags(fd));
      s = new net.Socket({ fd, readable: false, writable: true }) as unknown as NodeJS.WriteStream;
    } else {
      s = createWriteStream('', { fd, autoClose: true }) as unknown as NodeJS.WriteStream;
    }
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.onBrokenPipe();
    });
    if (this.#suspended) s.cork();
    this.#streams.set(n, s);
    return s;
  }

  readable(): NodeJS.ReadStream {
    if (this.#released) return Readable.from([]) as unknown as NodeJS.ReadStream;
    let s = this.#streams.get(0) as NodeJS.ReadStream | undefined;
    if (s) return s;
    const fd = this.#fd(0);
    if (tty.isatty(fd)) s = new tty.ReadStream(fd);
    else if (isPipeOrSocket(fd)) {
      this.#restoreFlags.set(0, fileStatusFlags(fd));
      s = new net.Socket({ fd, readable: true, writable: false }) as unknown as NodeJS.ReadStream;
    } else s = createReadStream('', { fd, autoClose: true }) as unknown as NodeJS.ReadStream;
    s.on('error', () => {});
    this.#streams.set(0, s);
    return s;
  }

  #suspended = false;
  #stdinWasFlowing = false;

  /** Hold the command's output (writes wait, and a command that minds backpressure waits with them) and stop reading input. */
  suspend(): void {
    if (this.#suspended || this.#released) return;
    this.#suspended = true;
    for (const n of [1, 2]) (this.#streams.get(n) as NodeJS.WriteStream | undefined)?.cork();
    const stdin = this.#streams.get(0) as NodeJS.ReadStream | undefined;
    this.#stdinWasFlowing = stdin?.readableFlowing === true;
    if (this.#stdinWasFlowing) stdin!.pause();
  }

  resume(): void {
    if (!this.#suspended || this.#released) return;
    this.#suspended = false;
    for (const n of [1, 2]) (this.#streams.get(n) as NodeJS.WriteStream | undefined)?.uncork();
    if (this.#stdinWasFlowing) (this.#streams.get(0) as NodeJS.ReadStream | undefined)?.resume();
  }

  refreshSize(): void {
    for (const s of this.#streams.values()) (s as { _refreshSize?: () => void })._refreshSize?.();
  }

  /** Flushes (when asked) what the command wrote, puts back the flags we changed and closes every descriptor. */
  async release(flush: boolean, clientGone: AbortSignal): Promise<void> {
    if (this.#released) return;
    if (flush) {
      const pending = [1, 2].map((n) => this.#streams.get(n) as NodeJS.WriteStream | undefined).filter((s) => s && !s.destroyed && s.writableLength > 0);
      if (pending.length) {
        const gone = new Promise<void>((r) => clientGone.addEventListener('abort', () => r(), { once: true }));
        const flushed = pending.map((s) => new Promise<void>((r) => s!.write('', () => r())));
        await Promise.race([Promise.all(flushed), gone]);
      }
    }
    for (const [n, s] of this.#streams) {
      const flags = this.#restoreFlags.get(n);
      if (flags !== undefined && !s.destroyed) {
        try {
          setFileStatusFlags(this.#fds.get(n)!, flags);
        } catch {
          // Already closed by the stream: nothing left to restore.
        }
      }
      const input = s as NodeJS.ReadStream;
      if (input.isTTY && input.isRaw) {
        try {
          input.setRawMode(false);
        } catch {
          // The terminal is gone with its client.
        }
      }
      s.destroy();
      // libuv writes a terminal through its own reopened descriptor and leaves ours open: that one we close.
      if (!(s as { isTTY?: boolean }).isTTY) this.#fds.delete(n);
    }
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
    this.#streams.clear();
    this.#released = true;
    closeSync(this.#pidfd);
  }
}

function isPipeOrSocket(fd: number): boolean {
  const st = fstatSync(fd);
  return st.isFIFO() || st.isSocket();
}
