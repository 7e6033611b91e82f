import type { Duplex } from 'node:stream';
import { berthError } from '../../core/errors.ts';

/**
 * Join a hijacked client connection and a task stream (attach, exec), for
 * every door. The task's output goes to the client; the client's input goes
 * to the task only with `stdin`. When the output ends, `beforeEnd` runs (an
 * exec records its exit code there, so the inspect that follows sees it)
 * and the connection closes. The client leaving closes the task stream,
 * never the container.
 *
 * `detachKeys` (docker's escape sequence, bytes from parseDetachKeys) are
 * watched for in the client's input: typed in full, they end the
 * connection and leave the container running, as dockerd's attach does. A
 * partial match is held back and sent on once the next byte breaks it.
 */
export interface SpliceOptions {
  stdin: boolean;
  detachKeys?: Buffer;
  /**
   * The client's input ended; the task stream's write side ends right
   * after. `sentInput` tells whether any input went to the task: a monitor
   * started with stdin-once closes the process's stdin itself once that
   * input is written, where a separate close-stdin could overtake the last
   * of it; with no input sent, only such a close ends the stdin.
   */
  onStdinEnd?: (sentInput: boolean) => void;
  beforeEnd?: () => Promise<unknown>;
}

export function splice(client: Duplex, task: Duplex, opts: SpliceOptions): void {
  // A client gone while the task stream was being opened has already closed: its 'close' will not come
  // again. The stream may be destroyed with an error too (its ctx aborted with the client), which must
  // find a listener.
  if (client.destroyed) {
    task.on('error', () => {});
    return void task.destroy();
  }
  const session = { ended: false };
  const finish = () => {
    if (session.ended) return;
    session.ended = true;
    void (opts.beforeEnd?.() ?? Promise.resolve()).catch(() => {}).then(() => client.end());
  };
  if (opts.stdin) forwardInput(client, task, opts, session);
  client.on('error', () => task.destroy());
  client.on('close', () => task.destroy());
  task.on('error', () => client.destroy());
  task.pipe(client, { end: false });
  task.on('end', finish);
  task.on('close', finish);
}

/**
 * The client's input to the task, for `splice` and for the native run's
 * relay (whose output ends with a frame of its own). `session.ended` is
 * shared with the output side: set by detach keys, it keeps the output's
 * end from running `beforeEnd`; set by the output's end, the input's end
 * comes too late to matter.
 */
export function forwardInput(client: Duplex, task: Duplex, opts: Pick<SpliceOptions, 'detachKeys' | 'onStdinEnd'>, session: { ended: boolean }): void {
  let sentInput = false;
  const escape = opts.detachKeys?.length ? new EscapeMatcher(opts.detachKeys) : undefined;
  client.on('data', (chunk: Buffer) => {
    if (!escape) {
      sentInput ||= chunk.length > 0;
      return void writeInput(client, task, chunk);
    }
    const { pass, detached } = escape.feed(chunk);
    if (!detached) {
      if (pass.length) {
        sentInput = true;
        writeInput(client, task, pass);
      }
      return;
    }
    session.ended = true;
    // The input typed before the keys reaches the container before its stream goes: a destroy
    // drops what the socket has not written yet.
    const close = () => {
      task.destroy();
      client.end();
    };
    if (pass.length && !task.destroyed && !task.writableEnded) task.write(pass, close);
    else close();
  });
  const inputEnded = () => {
    if (session.ended) return;
    opts.onStdinEnd?.(sentInput);
    task.end();
  };
  // A client with no input may have half-closed before the splice: its end was read already.
  if (client.readableEnded) inputEnded();
  else client.on('end', inputEnded);
}

/** Input to the task with backpressure: the client is paused until the task drains. */
function writeInput(client: Duplex, task: Duplex, chunk: Buffer): void {
  if (task.destroyed || task.writableEnded) return;
  if (!task.write(chunk)) {
    client.pause();
    task.once('drain', () => client.resume());
  }
}

/** docker's detach keys, "ctrl-p,ctrl-q" or "a,ctrl-b", as bytes; InvalidArgument for a key it does not know. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    if (k.length === 1) out.push(k.charCodeAt(0));
    else if (/^ctrl-[a-z@[\\\]^_]$/.test(k)) {
      const c = k.slice(5);
      out.push(c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 }[c]!);
    } else throw berthError('InvalidArgument', `Invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(out);
}

/** A request's detach keys: docker's default, ctrl-p ctrl-q, when it names none. */
export function detachKeysOf(spec: string | null | undefined): Buffer {
  return spec ? parseDetachKeys(spec) : Buffer.from([16, 17]);
}

/** Finds an escape sequence across chunk boundaries. */
export class EscapeMatcher {
  readonly #keys: Buffer;
  #held = 0;

  constructor(keys: Buffer) {
    this.#keys = keys;
  }

  /** The bytes to pass on now, and whether the whole sequence was typed. */
  feed(chunk: Buffer): { pass: Buffer; detached: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.#keys[this.#held]) {
        this.#held++;
        if (this.#held === this.#keys.length) return { pass: Buffer.from(out), detached: true };
        continue;
      }
      // A broken match: what was held back was input after all.
      for (let i = 0; i < this.#held; i++) out.push(this.#keys[i]);
      this.#held = 0;
      if (b === this.#keys[0]) this.#held = 1;
      else out.push(b);
    }
    return { pass: Buffer.from(out), detached: false };
  }
}
