import { finished, type Readable } from 'node:stream';

/**
 * The chunks of a byte stream, each as the stream produced it. A Readable's
 * own async iterator reads everything buffered at once, which copies all
 * queued chunks into one new buffer (`Buffer.concat`) whenever the consumer
 * falls behind: on a pull's download and its copy for the layer applier
 * that was a third of the main thread's time. Here the stream flows, and is
 * paused while more than `maxQueued` bytes wait for the consumer.
 *
 * Ends when the stream ends; throws its error, or ERR_STREAM_PREMATURE_CLOSE
 * when it is destroyed before its end. Stopping early (break, throw)
 * destroys the stream, as a Readable's iterator does.
 *
 *   for await (const chunk of chunksOf(response)) hash.update(chunk);
 */
export function chunksOf(stream: Readable, maxQueued = 4 << 20): AsyncIterableIterator<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let queued = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued > maxQueued) stream.pause();
    wake?.();
  };
  stream.on('data', onData);
  const stopWatching = finished(stream, { writable: false }, (err) => {
    ended = true;
    failure = err;
    wake?.();
  });
  const stop = () => {
    stream.off('data', onData);
    stopWatching();
    // An error the stream was destroyed with, still on its way, would otherwise find no listener
    // and stop the process; the consumer has stopped, so it is nobody's now.
    stream.on('error', () => {});
  };
  return {
    async next(): Promise<IteratorResult<Buffer>> {
      for (;;) {
        if (head < queue.length) {
          const chunk = queue[head];
          queue[head++] = undefined as unknown as Buffer;
          if (head === queue.length) {
            queue.length = 0;
            head = 0;
          }
          queued -= chunk.length;
          if (queued <= maxQueued / 2 && stream.isPaused() && !ended) stream.resume();
          return { value: chunk, done: false };
        }
        if (ended) {
          stop();
          if (failure) throw failure;
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
    async return(): Promise<IteratorResult<Buffer>> {
      stop();
      if (!ended) stream.destroy();
      ended = true;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
