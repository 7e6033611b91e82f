import type { Readable } from 'node:stream';

/**
 * docker's stdcopy framing of a non-tty attach stream, shared by the task
 * layer, the API doors and the CLI: each chunk is preceded by an 8-byte
 * header (stream number, three zero bytes, big-endian length).
 */
/** Stream numbers of the framing. */
export const Streams = { stdin: 0, stdout: 1, stderr: 2 } as const;

/**
 * Split a non-tty attach stream (docker's 8-byte header: stream, 3 zero
 * bytes, big-endian length) into frames. Calls `onFrame` per chunk.
 */
export function demux(stream: Readable, onFrame: (streamNo: number, data: Buffer) => void): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 8) {
        const size = pending.readUInt32BE(4);
        if (pending.length < 8 + size) break;
        onFrame(pending[0], pending.subarray(8, 8 + size));
        pending = pending.subarray(8 + size);
      }
    });
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', reject);
    stream.resume();
  });
}

/** One frame of docker's framing: the 8-byte header, then `data`. */
export function frame(stream: number, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(data.length, 4);
  return Buffer.concat([head, data]);
}
