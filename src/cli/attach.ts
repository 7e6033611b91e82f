import type { Duplex } from 'node:stream';
import type { ApiClient } from '../api/native/client.ts';
import { demux, Streams } from '../core/stdcopy.ts';
import type { CommandEnv } from './command.ts';

/**
 * The terminal side of `run`, `start -a`, `attach` and `exec`: copies the
 * user's stdin to the container and its output back, demultiplexes stdout
 * and stderr for non-tty containers, puts a terminal in raw mode (and always
 * restores it), follows window size changes, recognises docker's detach
 * sequence (ctrl-p ctrl-q) and forwards signals when asked.
 */
export interface AttachOptions {
  tty: boolean;
  /** Copy our stdin to the container. */
  stdin: boolean;
  /** Resize endpoint: `/containers/ID/resize` or `/exec/ID/resize`. */
  resizePath?: string;
  /** Forward SIGINT/SIGTERM/... to this container (docker's --sig-proxy). */
  signalTarget?: string;
  detachKeys?: number[];
  /** The output is in docker's framing even with a tty (`POST /containers/run`). */
  framed?: boolean;
  /** Frames on streams other than stdout and stderr (with `framed`). */
  onFrame?: (stream: number, data: Buffer) => void;
}

export interface AttachResult {
  detached: boolean;
}

const DEFAULT_DETACH = [0x10, 0x11]; // ctrl-p ctrl-q

export function attachStreams(env: CommandEnv, client: ApiClient, sock: Duplex, opts: AttachOptions): { done: Promise<AttachResult>; resize(): void } {
  const cleanups: Array<() => void> = [];
  let detached = false;
  const isTty = opts.tty && env.stdinIsTTY();
  // Building process.stdin loads the fs stream classes: only when it is read or set raw.
  const stdin = opts.stdin || isTty ? env.stdin : undefined;

  const resize = () => {
    if (!opts.resizePath || !env.stdout.isTTY) return;
    const { rows, columns } = env.stdout;
    if (!rows || !columns) return;
    void client.call('POST', opts.resizePath, { query: { h: rows, w: columns } }).catch(() => {});
  };

  if (opts.tty && env.stdout.isTTY) {
    cleanups.push(env.onSignal('SIGWINCH', resize));
  }
  if (isTty && stdin) {
    stdin.setRawMode(true);
    // The stream may be gone already (a hosted command whose client left): nothing left to restore.
    cleanups.push(() => void (stdin.destroyed || stdin.setRawMode(false)));
  }
  if (opts.signalTarget && !opts.tty) {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
      const h = () => void client.call('POST', `/containers/${encodeURIComponent(opts.signalTarget!)}/kill`, { query: { signal: sig } }).catch(() => {});
      cleanups.push(env.onSignal(sig, h));
    }
  }

  const done = new Promise<AttachResult>((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      for (const c of cleanups.reverse()) c();
      if (opts.stdin) stdin?.pause();
      resolve({ detached });
    };

    if (opts.stdin && stdin) {
      const keys = opts.detachKeys ?? DEFAULT_DETACH;
      let matched = 0;
      const onData = (chunk: Buffer) => {
        if (opts.tty) {
          // Hold back a possible detach sequence; pass everything else through.
          const out: number[] = [];
          for (let i = 0; i < chunk.length; i++) {
            if (chunk[i] === keys[matched]) {
              matched++;
              if (matched === keys.length) {
                if (out.length) sock.write(Buffer.from(out));
                detached = true;
                sock.destroy();
                finish();
                return;
              }
              continue;
            }
            if (matched) out.push(...keys.slice(0, matched));
            // The byte that broke a partial match may start a new one (ctrl-p ctrl-p ctrl-q).
            matched = chunk[i] === keys[0] ? 1 : 0;
            if (!matched) out.push(chunk[i]);
          }
          if (out.length) sock.write(Buffer.from(out));
          return;
        }
        sock.write(chunk);
      };
      stdin.on('data', onData);
      stdin.once('end', () => sock.end());
      cleanups.push(() => stdin.off('data', onData));
      stdin.resume();
    }

    // The container's output waits for a reader that is behind (berthd holds it), so nothing piles up here.
    const relay = (out: NodeJS.WritableStream, data: Buffer) => {
      if (out.write(data) || sock.isPaused()) return;
      sock.pause();
      const go = () => {
        out.off('drain', go).off('close', go).off('error', go);
        sock.resume();
      };
      out.once('drain', go).once('close', go).once('error', go);
    };
    if (opts.tty && !opts.framed) {
      sock.on('data', (d: Buffer) => relay(env.stdout, d));
      sock.resume();
      sock.once('end', finish);
      sock.once('close', finish);
    } else {
      demux(sock, (stream, data) => {
        if (stream === Streams.stderr) relay(env.stderr, data);
        else if (stream === Streams.stdout || !opts.onFrame) relay(env.stdout, data);
        else opts.onFrame(stream, data);
      }).then(finish, finish);
    }
    sock.once('error', finish);
  });
  return { done, resize };
}
