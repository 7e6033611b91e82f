import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../core/context.ts';
import type { LogEntry, ReadLogsOptions } from './logs.ts';
import { logTimeSeconds, parseLogLine, readLogs } from './logs.ts';

// Lines as native/monitor-log.c writes them.
const json = (stream: string, log: string, time: string) => JSON.stringify({ log, stream, time }) + '\n';
const cri = (stream: string, log: string, time: string, partial = false) => `${time} ${stream} ${partial ? 'P' : 'F'} ${log}\n`;
const ts = (sec: number) => `2024-05-01T10:00:${String(sec).padStart(2, '0')}.000000000Z`;
const T0 = Date.parse('2024-05-01T10:00:00Z') / 1000;

async function collect(file: string, opts: ReadLogsOptions): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLogs(rootCtx(), file, opts)) out.push(e);
  return out;
}

describe('parseLogLine', () => {
  it('parses json-file lines, keeping the newline and stream', () => {
    assert.deepEqual(parseLogLine('{"log":"hi\\n","stream":"stderr","time":"2024-05-01T10:00:00.123456789Z"}', 'json-file'), {
      stream: 'stderr',
      time: '2024-05-01T10:00:00.123456789Z',
      log: 'hi\n',
    });
    // A partial message has no newline.
    assert.equal(parseLogLine('{"log":"part","stream":"stdout","time":"t"}', 'json-file')?.log, 'part');
    assert.equal(parseLogLine('{"log":"\\u003chtml\\u003e\\n","stream":"stdout","time":"t"}', 'json-file')?.log, '<html>\n');
  });

  it('rejects junk and empty lines', () => {
    assert.equal(parseLogLine('', 'json-file'), undefined);
    assert.equal(parseLogLine('{"log":', 'json-file'), undefined);
    assert.equal(parseLogLine('{"stream":"stdout"}', 'json-file'), undefined);
    assert.equal(parseLogLine('', 'cri'), undefined);
    assert.equal(parseLogLine('nospace', 'cri'), undefined);
  });

  it('parses CRI full and partial lines', () => {
    assert.deepEqual(parseLogLine('2024-05-01T10:00:00.5Z stdout F hello world', 'cri'), { time: '2024-05-01T10:00:00.5Z', stream: 'stdout', log: 'hello world\n' });
    assert.deepEqual(parseLogLine('2024-05-01T10:00:00.5Z stderr P half ', 'cri'), { time: '2024-05-01T10:00:00.5Z', stream: 'stderr', log: 'half ' });
    // An empty full line is just a newline.
    assert.equal(parseLogLine('2024-05-01T10:00:00.5Z stdout F ', 'cri')?.log, '\n');
    assert.equal(parseLogLine('2024-05-01T10:00:00.5Z stdout F', 'cri')?.log, '\n');
  });
});

describe('logTimeSeconds', () => {
  it('keeps sub-second precision and honours offsets', () => {
    assert.equal(logTimeSeconds('2024-05-01T10:00:00Z'), T0);
    assert.ok(Math.abs(logTimeSeconds('2024-05-01T10:00:00.123456789Z') - (T0 + 0.123456789)) < 1e-6);
    assert.equal(logTimeSeconds('2024-05-01T12:00:00+02:00'), T0);
    assert.ok(logTimeSeconds('2024-05-01T10:00:00.000001Z') > T0);
  });
});

describe('readLogs', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-logs-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads rotated files oldest first, with tail and stream filters', async () => {
    const f = path.join(dir, 'rot.log');
    await writeFile(f + '.2', json('stdout', 'a\n', ts(1)) + json('stderr', 'b\n', ts(2)));
    await writeFile(f + '.1', json('stdout', 'c\n', ts(3)));
    await writeFile(f, json('stderr', 'd\n', ts(4)) + json('stdout', 'e\n', ts(5)));
    // Not a rotation of f: ignored.
    await writeFile(f + '.old', json('stdout', 'x\n', ts(9)));
    await writeFile(path.join(dir, 'rot.log2'), json('stdout', 'y\n', ts(9)));
    const logs = async (o: Partial<ReadLogsOptions>) => (await collect(f, { format: 'json-file', ...o })).map((e) => e.log.trim()).join('');
    assert.equal(await logs({}), 'abcde');
    assert.equal(await logs({ tail: 2 }), 'de');
    assert.equal(await logs({ tail: 0 }), '');
    assert.equal(await logs({ tail: -1 }), 'abcde');
    assert.equal(await logs({ tail: 100 }), 'abcde');
    assert.equal(await logs({ stderr: false }), 'ace');
    assert.equal(await logs({ stdout: false }), 'bd');
    assert.equal(await logs({ since: T0 + 2, until: T0 + 4 }), 'bcd');
    assert.equal(await logs({ since: T0 + 2.5 }), 'cde');
    assert.equal(await logs({ until: T0 + 1 }), 'a');
  });

  it('reads CRI files and leaves a partial last line for later', async () => {
    const f = path.join(dir, 'cri.log');
    await writeFile(f, cri('stdout', 'one', ts(1)) + cri('stderr', 'tw', ts(2), true) + cri('stderr', 'o', ts(2)) + '2024-05-01T10:00:03Z stdout F unfin');
    const got = await collect(f, { format: 'cri' });
    assert.deepEqual(
      got.map((e) => [e.stream, e.log]),
      [
        ['stdout', 'one\n'],
        ['stderr', 'tw'],
        ['stderr', 'o\n'],
      ],
    );
  });

  it('returns nothing for a missing file', async () => {
    assert.deepEqual(await collect(path.join(dir, 'missing.log'), { format: 'json-file' }), []);
  });

  it('follows appended lines across a rotation and stops when told', async () => {
    const f = path.join(dir, 'follow.log');
    await writeFile(f, json('stdout', 'old\n', ts(1)));
    let done = false;
    const ac = new AbortController();
    const it = readLogs(rootCtx({ signal: ac.signal }), f, { format: 'json-file', follow: true, tail: 1, stopWhen: () => done });
    const next = async () => {
      const r = await it.next();
      assert.equal(r.done, false);
      return (r.value as LogEntry).log;
    };
    try {
      assert.equal(await next(), 'old\n');
      // A line written in two pieces, split inside a multi-byte character, is yielded whole.
      const line = Buffer.from(json('stdout', 'n\u00e9w1\n', ts(2)));
      const cut = line.indexOf(Buffer.from('\u00e9')) + 1;
      await appendFile(f, line.subarray(0, cut));
      const pending = next();
      await appendFile(f, line.subarray(cut));
      assert.equal(await pending, 'n\u00e9w1\n');
      // Rotate as the monitor does: lines written to the old file just before the rename
      // are still delivered, then the new file is read from its start.
      await appendFile(f, json('stdout', 'tail-of-old\n', ts(3)));
      await rename(f, f + '.1');
      await writeFile(f, json('stderr', 'fresh\n', ts(4)));
      assert.equal(await next(), 'tail-of-old\n');
      assert.equal(await next(), 'fresh\n');
      await appendFile(f, json('stdout', 'last\n', ts(5)));
      done = true;
      // Lines flushed before the writer went away are still read, then the stream ends.
      assert.equal(await next(), 'last\n');
      assert.equal((await it.next()).done, true);
    } finally {
      await it.return(undefined);
      ac.abort();
    }
  });

  it('follows a file truncated in place, as rotation with one file does', async () => {
    const f = path.join(dir, 'trunc.log');
    await writeFile(f, json('stdout', 'a long first line\n', ts(1)));
    let done = false;
    const it = readLogs(rootCtx(), f, { format: 'json-file', follow: true, stopWhen: () => done });
    try {
      assert.equal((await it.next()).value?.log, 'a long first line\n');
      const pending = it.next();
      await truncate(f, 0);
      await appendFile(f, json('stdout', 'b\n', ts(2)));
      assert.equal((await pending).value?.log, 'b\n');
      done = true;
      assert.equal((await it.next()).done, true);
    } finally {
      await it.return(undefined);
    }
  });

  it('closes its directory watcher when stopWhen ends a follow', async () => {
    const f = path.join(dir, 'stop.log');
    await writeFile(f, json('stdout', 'x\n', ts(1)));
    const watchers = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    const before = watchers();
    let polls = 0;
    assert.equal((await collect(f, { format: 'json-file', follow: true, stopWhen: () => ++polls > 1 })).length, 1);
    for (let i = 0; i < 100 && watchers() > before; i++) await new Promise((r) => setImmediate(r));
    assert.equal(watchers(), before);
  });

  it('ends a follow when the signal aborts', async () => {
    const f = path.join(dir, 'abort.log');
    await writeFile(f, json('stdout', 'x\n', ts(1)));
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      try {
        for await (const e of readLogs(rootCtx({ signal: ac.signal }), f, { format: 'json-file', follow: true })) {
          seen.push(e.log);
          ac.abort();
        }
      } catch (err) {
        assert.equal((err as Error).name, 'AbortError');
      }
    })();
    await reading;
    assert.deepEqual(seen, ['x\n']);
  });
});
