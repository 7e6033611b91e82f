import type { Duplex } from 'node:stream';
import { Transform } from 'node:stream';
import type { ContainerConfig } from '../../core/containers.ts';
import { cleanupCtx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import { forwardInput } from '../http/hijack.ts';
import { frame, Streams } from '../../core/stdcopy.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import { CONTAINER_ID_HEADER, RunStreams, WARNINGS_HEADER } from './protocol.ts';
import type { Router } from './server.ts';
import { containerConfigSchema } from './bodies.ts';

/**
 * `POST /containers/run`: docker's `run` as one request, so the CLI pays one
 * round trip instead of four (create, attach, wait, start). The body is the
 * ContainerConfig.
 *
 * - `?attach=1` upgrades the connection once the container is created and
 *   its task made (a bad command fails before, as an error answer): the 101
 *   carries the id and warnings, then the container starts and its output
 *   streams in docker's framing (tty output too), stdin flows the other
 *   way, and a last frame on `RunStreams.exit` gives the exit code once the
 *   container has exited (and, with autoRemove, is removed).
 * - Without it, the answer is `{ id, warnings }` once the container runs.
 *
 * A container that fails to start is given back as docker's CLI does it
 * (removed when autoRemove), and the error carries its exit code.
 */
export function registerRunRoute(router: Router, containers: ContainerService): void {
  router.add('POST', '/containers/run', async (req) => {
    const config = await req.json<ContainerConfig>(containerConfigSchema);
    if (!config || typeof config.image !== 'string' || !config.image) throw berthError('InvalidArgument', 'config.image is required');
    const name = req.query.get('name');
    if (name) config.name = name;
    const ctx = req.ctx;
    const { id, warnings } = await containers.create(ctx, config);
    const giveBack = async (err: unknown): Promise<never> => {
      if (config.autoRemove) await containers.remove(cleanupCtx(ctx), id, { force: true }).catch(() => {});
      throw err;
    };
    if (req.query.get('attach') !== '1') {
      await containers.start(ctx, id).catch(giveBack);
      return { id, warnings };
    }
    // The client that runs the container wants all its output: it waits for this relay when it is behind.
    const { stream } = await containers.attach(ctx, id, { all: true }).catch(giveBack);
    // Asked before the start, so an exit at once is not missed.
    const exited = containers.wait(ctx, id, config.autoRemove ? 'removed' : 'next-exit');
    exited.catch(() => {});
    const client = req.upgrade({ [CONTAINER_ID_HEADER]: id, [WARNINGS_HEADER]: JSON.stringify(warnings) });
    // Input that was sent is followed by its close in the monitor (stdin-once); none sent, by a close of its own.
    const outputDone = relay(client, config.tty ? stream.pipe(framer(Streams.stdout)) : stream, stream, (sentInput) => {
      if (config.stdinOnce && !sentInput) void containers.closeStdin(cleanupCtx(ctx), id);
    });
    let last: { exitCode: number; error?: string };
    try {
      // A client gone before the start leaves the container created, as a CLI killed between
      // docker's create and start does.
      ctx.signal.throwIfAborted();
      await containers.start(ctx, id);
      await outputDone;
      last = await exited;
    } catch (err) {
      if (ctx.signal.aborted) return;
      const exitCode = (err as { exitCode?: number }).exitCode ?? 125;
      stream.destroy();
      if (config.autoRemove) await containers.remove(cleanupCtx(ctx), id, { force: true }).catch(() => {});
      last = { exitCode, error: (err as Error).message };
    }
    if (!client.destroyed) client.end(frame(RunStreams.exit, Buffer.from(JSON.stringify(last))));
    await new Promise((resolve) => client.once('close', resolve).once('finish', resolve));
  });
}

/**
 * Copy the task's output to the client and the client's input to the task,
 * without ending the client: the exit frame follows the output. Resolves
 * when the output has ended; the client leaving (a detach) closes the task
 * connection, never the container.
 */
function relay(client: Duplex, output: NodeJS.ReadableStream & { destroy?: () => void }, task: Duplex, onStdinEnd: (sentInput: boolean) => void): Promise<void> {
  if (client.destroyed) task.destroy();
  forwardInput(client, task, { onStdinEnd }, { ended: false });
  // Reading a body that came in its own packets paused the connection.
  client.resume();
  client.on('error', () => task.destroy());
  client.on('close', () => task.destroy());
  task.on('error', () => client.destroy());
  return new Promise<void>((resolve) => {
    output.pipe(client, { end: false });
    output.on('end', resolve);
    task.on('close', () => setImmediate(resolve));
  });
}

/** docker's framing for a raw (tty) stream, every chunk as `stream`. */
function framer(stream: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      done(null, frame(stream, chunk));
    },
  });
}

