import type { Duplex } from 'node:stream';

/** Content types of a hijacked or logs stream: raw for a tty, docker's 8-byte framing otherwise. */
export const streamType = (tty: boolean): string => (tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream');

/**
 * Join a hijacked client connection and a task stream (attach, exec). The
 * task's output goes to the client; the client's input goes to the task
 * only with `stdin`. When the output ends, `beforeEnd` runs (an exec
 * records its exit code there, so the inspect that follows sees it) and the
 * connection closes. The client leaving closes the task stream, never the
 * container.
 */
export function splice(client: Duplex, task: Duplex, opts: { stdin: boolean; onStdinEnd?: () => void; beforeEnd?: () => Promise<unknown> }): void {
  if (opts.stdin) {
    client.pipe(task, { end: false });
    client.on('end', () => {
      opts.onStdinEnd?.();
      task.end();
    });
  }
  client.on('error', () => task.destroy());
  client.on('close', () => task.destroy());
  task.on('error', () => client.destroy());
  task.pipe(client, { end: false });
  let ended = false;
  const finish = () => {
    if (ended) return;
    ended = true;
    void (opts.beforeEnd?.() ?? Promise.resolve()).catch(() => {}).then(() => client.end());
  };
  task.on('end', finish);
  task.on('close', finish);
}
