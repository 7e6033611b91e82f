import { watch } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';
import type { Ctx } from '../../core/context.ts';
import { hasErrno } from '../../core/errors.ts';

/**
 * Reading the container logs that berth-monitor writes (docker's json-file
 * or the CRI format), for `logs` with --tail, --since, --until and --follow.
 * Rotated files (PATH.N ... PATH.1) are read before PATH; following
 * survives a rotation (the old file is finished, then the new one read from
 * its start).
 */
export interface LogRecord {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds, as written. */
  time: string;
  /** The text, with its trailing newline unless `partial`. */
  text: string;
  /** A piece of a line longer than 16 KiB, or the last bytes before exit without a newline. */
  partial: boolean;
}

export interface LogFile {
  path: string;
  format: 'json-file' | 'cri';
  /** Rotated files kept; older ones are looked for up to this count. */
  maxFiles?: number;
}

export interface ReadLogOptions {
  /** Only the last N records (before following). */
  tail?: number;
  since?: Date;
  until?: Date;
  /** Keep reading as the file grows, until `stop` settles (after a final read) or ctx aborts. */
  follow?: boolean;
  stop?: Promise<unknown>;
  /** Streams to read; both unless one is set false. Filtered before the tail is taken. */
  stdout?: boolean;
  stderr?: boolean;
}

// An empty full line may end right after its tag.
const criLine = /^(\S+) (stdout|stderr) ([FP])(?: (.*))?$/s;

/** One line of a log file (without its newline); undefined if it is not a record. */
export function parseLogLine(format: LogFile['format'], line: string): LogRecord | undefined {
  if (format === 'cri') {
    const m = criLine.exec(line);
    if (!m) return undefined;
    const partial = m[3] === 'P';
    const content = m[4] ?? '';
    return { time: m[1], stream: m[2] as LogRecord['stream'], partial, text: partial ? content : content + '\n' };
  }
  try {
    const rec = JSON.parse(line) as { log?: string; stream?: string; time?: string };
    if (typeof rec.log !== 'string' || (rec.stream !== 'stdout' && rec.stream !== 'stderr')) return undefined;
    return { time: rec.time ?? '', stream: rec.stream, text: rec.log, partial: !rec.log.endsWith('\n') };
  } catch {
    return undefined;
  }
}

function inWindow(rec: LogRecord, opts: ReadLogOptions): boolean {
  if (rec.stream === 'stdout' ? opts.stdout === false : opts.stderr === false) return false;
  if (!opts.since && !opts.until) return true;
  const t = Date.parse(rec.time);
  if (opts.since && t < opts.since.getTime()) return false;
  if (opts.until && t > opts.until.getTime()) return false;
  return true;
}

/** Reads whole lines from a file handle, from an offset; keeps the incomplete rest for the next call. */
class LineReader {
  readonly fh: FileHandle;
  offset = 0;
  // Undecoded: a character split between two reads must be decoded whole.
  private rest: Buffer = Buffer.alloc(0);
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async *lines(): AsyncGenerator<string> {
    // Truncated in place (the monitor's rotation with a single file): start over.
    if ((await this.fh.stat()).size < this.offset) {
      this.offset = 0;
      this.rest = Buffer.alloc(0);
    }
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      const chunk = this.rest.length ? Buffer.concat([this.rest, this.buf.subarray(0, bytesRead)]) : this.buf.subarray(0, bytesRead);
      const lastNl = chunk.lastIndexOf(0x0a);
      // Copied: the read buffer is reused by the next read.
      this.rest = Buffer.from(chunk.subarray(lastNl + 1));
      if (lastNl >= 0) yield* chunk.toString('utf8', 0, lastNl).split('\n');
    }
  }
}

async function openIfExists(p: string): Promise<FileHandle | undefined> {
  try {
    return await open(p, 'r');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** The time of a file's first record, for ordering files that rotations renamed under us. */
async function firstTime(fh: FileHandle, format: LogFile['format']): Promise<string> {
  for await (const line of new LineReader(fh).lines()) return parseLogLine(format, line)?.time ?? '';
  return '\uffff';
}

/**
 * Handles on the log files not read yet (inodes not in `seen`), oldest
 * first. Names shift with every rotation, so files are pinned by opening
 * them and ordered by their first record's time rather than by name. A
 * writer rotating many times while a pass runs can still slip a file past
 * both passes; docker's follower has the same limit.
 */
async function unreadFiles(log: LogFile, seen: Set<number>): Promise<FileHandle[]> {
  const found: Array<{ fh: FileHandle; time: string }> = [];
  const inodes = new Set<number>();
  const names = [log.path];
  for (let i = 1; i <= Math.max(1, (log.maxFiles ?? 1) - 1); i++) names.push(`${log.path}.${i}`);
  // Two passes: a file being renamed along the rotation cascade can be missed by one pass.
  for (const name of [...names, ...names]) {
    const fh = await openIfExists(name);
    if (!fh) continue;
    const { ino } = await fh.stat();
    if (seen.has(ino) || inodes.has(ino)) {
      await fh.close();
      continue;
    }
    inodes.add(ino);
    found.push({ fh, time: '' });
  }
  // Times only now: a file was complete before any newer one existed, and all are open.
  for (const f of found) f.time = await firstTime(f.fh, log.format);
  return found.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0)).map((f) => f.fh);
}

/** Records of a container log, oldest first. */
export async function* readLog(ctx: Ctx, log: LogFile, opts: ReadLogOptions = {}): AsyncGenerator<LogRecord> {
  const tail: LogRecord[] = [];
  const emit = function* (rec: LogRecord | undefined): Generator<LogRecord> {
    if (!rec || !inWindow(rec, opts)) return;
    if (opts.tail === undefined) {
      yield rec;
      return;
    }
    if (opts.tail <= 0) return;
    tail.push(rec);
    if (tail.length > opts.tail) tail.shift();
  };
  const seen = new Set<number>();
  // The current file is followed by `reader`; rotated files are read whole.
  let reader: LineReader | undefined;
  let readerIno = -1;
  const switchTo = async (files: FileHandle[]): Promise<FileHandle[]> => {
    const last = files.pop();
    if (last) {
      reader = new LineReader(last);
      readerIno = (await last.stat()).ino;
    }
    return files;
  };
  try {
    for (const fh of await switchTo(await unreadFiles(log, seen))) {
      try {
        seen.add((await fh.stat()).ino);
        for await (const line of new LineReader(fh).lines()) yield* emit(parseLogLine(log.format, line));
      } finally {
        await fh.close();
      }
    }
    if (reader) for await (const line of reader.lines()) yield* emit(parseLogLine(log.format, line));
    yield* tail.splice(0);
    if (!opts.follow) return;
    const fresh = (line: string) => {
      const rec = parseLogLine(log.format, line);
      return rec && inWindow(rec, { ...opts, tail: undefined }) ? rec : undefined;
    };
    let stopped = false;
    let wake: () => void = () => {};
    const onStop = () => {
      stopped = true;
      wake();
    };
    void opts.stop?.then(onStop, onStop);
    const dir = log.path.slice(0, log.path.lastIndexOf('/')) || '/';
    const watcher = watch(dir, { persistent: false }, () => wake());
    watcher.on('error', () => {});
    try {
      for (;;) {
        const last = stopped;
        if (reader) {
          for await (const line of reader.lines()) {
            const rec = fresh(line);
            if (rec) yield rec;
          }
        }
        const cur = await stat(log.path).catch(() => undefined);
        if (cur && cur.ino !== readerIno) {
          // Rotated, perhaps several times: finish ours, then every file written since, in order.
          if (reader) {
            for await (const line of reader.lines()) {
              const rec = fresh(line);
              if (rec) yield rec;
            }
            seen.add(readerIno);
            await reader.fh.close();
            reader = undefined;
          }
          for (const fh of await switchTo(await unreadFiles(log, seen))) {
            try {
              seen.add((await fh.stat()).ino);
              for await (const line of new LineReader(fh).lines()) {
                const rec = fresh(line);
                if (rec) yield rec;
              }
            } finally {
              await fh.close();
            }
          }
          continue;
        }
        if (last) return;
        ctx.signal.throwIfAborted();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 250);
          function done() {
            clearTimeout(timer);
            ctx.signal.removeEventListener('abort', done);
            resolve();
          }
          wake = done;
          ctx.signal.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      watcher.close();
    }
  } finally {
    await reader?.fh.close();
  }
}
