import { open, readdir, stat, watch } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';

/**
 * Reading container logs written by the monitor: docker's json-file format
 * (`{"log":"hi\n","stream":"stdout","time":"2024-...Z"}` a line) or the CRI
 * format (`2024-...Z stdout F hi`), with docker's rotation naming: the live
 * file is PATH and older ones PATH.1 (newest) ... PATH.N (oldest).
 *
 * `readLogs` yields entries oldest first, honouring tail/since/until, and with
 * `follow` keeps yielding new lines (surviving rotation) until the signal
 * aborts or `stopWhen()` says the writer is gone and the file is drained.
 */
export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds, as written. */
  time: string;
  /** The bytes of the line, including its newline when it had one. */
  log: string;
}

export interface ReadLogsOptions {
  format: 'json-file' | 'cri';
  follow?: boolean;
  /** Last N entries; undefined or negative means all. */
  tail?: number;
  /** Unix seconds (fractions allowed). */
  since?: number;
  until?: number;
  stdout?: boolean;
  stderr?: boolean;
  /** Polled while following: true once nothing more will be written. */
  stopWhen?: () => boolean | Promise<boolean>;
}

export function parseLogLine(line: string, format: 'json-file' | 'cri'): LogEntry | undefined {
  if (!line) return undefined;
  if (format === 'json-file') {
    try {
      const o = JSON.parse(line) as { log?: string; stream?: string; time?: string };
      if (typeof o.log !== 'string') return undefined;
      return { stream: o.stream === 'stderr' ? 'stderr' : 'stdout', time: o.time ?? '', log: o.log };
    } catch {
      return undefined;
    }
  }
  // CRI: TIMESTAMP STREAM TAG CONTENT; tag P marks a partial line (no newline).
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0) return undefined;
  const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  const content = c < 0 ? '' : line.slice(c + 1);
  return { time: line.slice(0, a), stream: line.slice(a + 1, b) === 'stderr' ? 'stderr' : 'stdout', log: tag.startsWith('P') ? content : content + '\n' };
}

/** Seconds since the epoch of an RFC 3339 nanosecond timestamp (precision to microseconds). */
export function logTimeSeconds(time: string): number {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return Date.parse(time) / 1000;
  const base = Date.parse(m[1] + m[3]) / 1000;
  return base + (m[2] ? Number('0.' + m[2]) : 0);
}

async function rotatedFiles(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const olds = names
    .filter((n) => n.startsWith(base + '.') && /^\d+$/.test(n.slice(base.length + 1)))
    .map((n) => Number(n.slice(base.length + 1)))
    .sort((x, y) => y - x)
    .map((i) => path.join(dir, `${base}.${i}`));
  return [...olds, file];
}

export async function* readLogs(ctx: Ctx, file: string, opts: ReadLogsOptions): AsyncGenerator<LogEntry> {
  const wantStdout = opts.stdout ?? true;
  const wantStderr = opts.stderr ?? true;
  const keep = (e: LogEntry) => {
    if (e.stream === 'stdout' ? !wantStdout : !wantStderr) return false;
    if (opts.since !== undefined || opts.until !== undefined) {
      const t = logTimeSeconds(e.time);
      if (opts.since !== undefined && t < opts.since) return false;
      if (opts.until !== undefined && t > opts.until) return false;
    }
    return true;
  };

  // The backlog: whole rotated files, newest last. With a tail only the last N are kept.
  const tail = opts.tail !== undefined && opts.tail >= 0 ? opts.tail : undefined;
  const backlog: LogEntry[] = [];
  let liveOffset = 0;
  let liveIno = 0;
  for (const f of await rotatedFiles(file)) {
    let text: string;
    try {
      const fh = await open(f, 'r');
      try {
        const st = await fh.stat();
        const buf = Buffer.alloc(st.size);
        await fh.read(buf, 0, st.size, 0);
        text = buf.toString('utf8');
        if (f === file) {
          // Only complete lines are consumed; a partial last line is read again when followed.
          const lastNl = text.lastIndexOf('\n');
          text = text.slice(0, lastNl + 1);
          liveOffset = Buffer.byteLength(text);
          liveIno = st.ino;
        }
      } finally {
        await fh.close();
      }
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const e = parseLogLine(line, opts.format);
      if (e && keep(e)) {
        backlog.push(e);
        if (tail !== undefined && backlog.length > tail) backlog.shift();
      }
    }
  }
  if (tail !== 0) yield* backlog;
  if (!opts.follow) return;

  // The watcher gets its own signal so that it is closed however the loop ends
  // (stopWhen, the consumer breaking off), not only when ctx.signal aborts.
  const stopWatching = new AbortController();
  const watcher = watch(path.dirname(file), { signal: AbortSignal.any([ctx.signal, stopWatching.signal]) });
  const it = watcher[Symbol.asyncIterator]();
  // Bytes after the last newline, kept undecoded so a character split between reads survives.
  let pending = Buffer.alloc(0);
  try {
    yield* followLive();
  } finally {
    stopWatching.abort();
  }

  async function* followLive(): AsyncGenerator<LogEntry> {
    for (;;) {
      if (ctx.signal.aborted) return;
      let st;
      try {
        st = await stat(file);
      } catch {
        st = undefined;
      }
      if (st && st.ino !== liveIno) {
        // Rotated: finish the old file (now PATH.1) from where we were, then start the new one.
        if (liveIno) yield* drain(path.join(path.dirname(file), path.basename(file) + '.1'), liveOffset, liveIno);
        liveIno = st.ino;
        liveOffset = 0;
        pending = Buffer.alloc(0);
      } else if (st && st.size < liveOffset) {
        // Truncated in place (the monitor's rotation with max-file 1): start over.
        liveOffset = 0;
        pending = Buffer.alloc(0);
      }
      if (st && st.size > liveOffset) {
        const fh = await open(file, 'r');
        try {
          const len = st.size - liveOffset;
          const buf = Buffer.alloc(len);
          const { bytesRead } = await fh.read(buf, 0, len, liveOffset);
          liveOffset += bytesRead;
          pending = Buffer.concat([pending, buf.subarray(0, bytesRead)]);
        } finally {
          await fh.close();
        }
        const lastNl = pending.lastIndexOf(0x0a);
        if (lastNl >= 0) {
          for (const line of pending.subarray(0, lastNl).toString('utf8').split('\n')) {
            const e = parseLogLine(line, opts.format);
            if (e && keep(e)) yield e;
          }
          pending = pending.subarray(lastNl + 1);
        }
        continue;
      }
      if (opts.stopWhen && (await opts.stopWhen())) {
        // One last look: the writer may have flushed just before it exited.
        const again = await stat(file).catch(() => undefined);
        if (!again || again.size <= liveOffset) return;
        continue;
      }
      // Wait for a change in the directory, or poll every 250 ms as a fallback.
      await Promise.race([it.next(), new Promise((r) => setTimeout(r, 250))]);
    }
  }

  async function* drain(f: string, offset: number, ino: number): AsyncGenerator<LogEntry> {
    try {
      const fh = await open(f, 'r');
      try {
        const st = await fh.stat();
        if (st.ino !== ino || st.size <= offset) return;
        const buf = Buffer.alloc(st.size - offset);
        await fh.read(buf, 0, buf.length, offset);
        for (const line of Buffer.concat([pending, buf]).toString('utf8').split('\n')) {
          const e = parseLogLine(line, opts.format);
          if (e && keep(e)) yield e;
        }
      } finally {
        await fh.close();
      }
    } catch {
      // The rotated file is already gone: those lines are lost, as with docker.
    }
  }
}
