/**
 * process.exit(code) once every stream in `streams` has written out what it
 * holds. A write to a pipe is synchronous only while the pipe has room: a
 * reader slower than the command (`berth exec C cat F | wc -c`) leaves
 * writes queued in the stream, which an immediate process.exit would drop.
 * A stream whose reader has gone (EPIPE) holds nothing worth waiting for.
 */
export function exitOnceFlushed(code: number, streams: Iterable<NodeJS.WritableStream & { writableLength: number }>): void {
  const queued = [...streams].filter((s) => s.writableLength > 0);
  if (!queued.length) process.exit(code);
  let left = queued.length;
  const done = () => --left === 0 && process.exit(code);
  for (const s of queued) {
    s.once('error', () => process.exit(code));
    // An empty write's callback runs once every write before it is out.
    s.write('', done);
  }
}
