import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import type { LogRecord } from './log-reader.ts';
import { parseLogLine, readLog } from './log-reader.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'berth-logread-'));
  dirs.push(d);
  return d;
}

const j = (log: string, stream: string, time: string) => JSON.stringify({ log, stream, time }) + '\n';

async function all(it: AsyncIterable<LogRecord>): Promise<string[]> {
  const out: string[] = [];
  for await (const r of it) out.push(`${r.stream}:${r.text}`);
  return out;
}

test('parseLogLine reads json-file and CRI records', () => {
  assert.deepEqual(parseLogLine('json-file', j('hi\n', 'stdout', 't1').trim()), { time: 't1', stream: 'stdout', text: 'hi\n', partial: false });
  assert.deepEqual(parseLogLine('json-file', j('part', 'stderr', 't2').trim()), { time: 't2', stream: 'stderr', text: 'part', partial: true });
  assert.deepEqual(parseLogLine('cri', '2016-10-06T00:17:09.669794202Z stdout F a b'), { time: '2016-10-06T00:17:09.669794202Z', stream: 'stdout', text: 'a b\n', partial: false });
  assert.equal(parseLogLine('cri', '2016 stdout P x')?.partial, true);
  assert.equal(parseLogLine('cri', 'garbage'), undefined);
  assert.equal(parseLogLine('json-file', '{"log":1}'), undefined);
});

test('readLog: rotated files first, tail, since and until', async () => {
  const d = await tmp();
  const p = path.join(d, 'c.log');
  await writeFile(p + '.2', j('1\n', 'stdout', '2026-01-01T00:00:01.000000000Z'));
  await writeFile(p + '.1', j('2\n', 'stderr', '2026-01-01T00:00:02.000000000Z'));
  await writeFile(p, j('3\n', 'stdout', '2026-01-01T00:00:03.000000000Z') + j('4\n', 'stdout', '2026-01-01T00:00:04.000000000Z'));
  const ctx = rootCtx();
  const log = { path: p, format: 'json-file' as const, maxFiles: 3 };
  assert.deepEqual(await all(readLog(ctx, log)), ['stdout:1\n', 'stderr:2\n', 'stdout:3\n', 'stdout:4\n']);
  assert.deepEqual(await all(readLog(ctx, log, { tail: 2 })), ['stdout:3\n', 'stdout:4\n']);
  assert.deepEqual(await all(readLog(ctx, log, { tail: 0 })), []);
  const since = new Date('2026-01-01T00:00:02Z');
  const until = new Date('2026-01-01T00:00:03Z');
  assert.deepEqual(await all(readLog(ctx, log, { since, until })), ['stderr:2\n', 'stdout:3\n']);
  assert.deepEqual(await all(readLog(ctx, { path: path.join(d, 'none.log'), format: 'cri' })), []);
});

test('readLog follows growth and a rotation until stopped', async () => {
  const d = await tmp();
  const p = path.join(d, 'c.log');
  await writeFile(p, '2026-01-01T00:00:01.000000000Z stdout F one\n');
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const got: string[] = [];
  const reading = (async () => {
    for await (const r of readLog(rootCtx(), { path: p, format: 'cri', maxFiles: 2 }, { follow: true, stop: stopped })) {
      got.push(r.text);
      if (got.length === 1) {
        await appendFile(p, '2026-01-01T00:00:02.000000000Z stdout P tw');
        await appendFile(p, 'o-part\n');
      }
      if (got.length === 2) {
        // Rotate as the monitor does: the old file moves away, a new one starts.
        await appendFile(p, '2026-01-01T00:00:03.000000000Z stderr F three\n');
        await rename(p, p + '.1');
        await writeFile(p, '2026-01-01T00:00:04.000000000Z stdout F four\n');
      }
      if (got.length === 4) stop();
    }
  })();
  await reading;
  assert.deepEqual(got, ['one\n', 'two-part', 'three\n', 'four\n']);
});

test('readLog follows a file truncated in place (a single log file rotating)', async () => {
  const d = await tmp();
  const p = path.join(d, 'c.log');
  await writeFile(p, j('a\n', 'stdout', '2026-01-01T00:00:01.000000000Z') + j('b\n', 'stdout', '2026-01-01T00:00:02.000000000Z'));
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const got: string[] = [];
  for await (const r of readLog(rootCtx(), { path: p, format: 'json-file' }, { follow: true, stop: stopped })) {
    got.push(r.text);
    if (got.length === 2) {
      await truncate(p, 0);
      await appendFile(p, j('c\n', 'stdout', '2026-01-01T00:00:03.000000000Z'));
    }
    if (got.length === 3) stop();
  }
  assert.deepEqual(got, ['a\n', 'b\n', 'c\n']);
});

// Lines as native/monitor-log.c writes them.
const ts = (sec: number) => `2024-05-01T10:00:${String(sec).padStart(2, '0')}.000000000Z`;
const at = (sec: number) => new Date(Date.parse('2024-05-01T10:00:00Z') + sec * 1000);
const cri = (stream: string, log: string, time: string, partial = false) => `${time} ${stream} ${partial ? 'P' : 'F'} ${log}\n`;

test('parseLogLine: junk, empty CRI lines, escapes', () => {
  assert.equal(parseLogLine('json-file', ''), undefined);
  assert.equal(parseLogLine('json-file', '{"log":'), undefined);
  assert.equal(parseLogLine('json-file', '{"stream":"stdout"}'), undefined);
  assert.equal(parseLogLine('json-file', '{"log":"\\u003chtml\\u003e\\n","stream":"stdout","time":"t"}')?.text, '<html>\n');
  assert.equal(parseLogLine('cri', ''), undefined);
  assert.equal(parseLogLine('cri', '2024-05-01T10:00:00.5Z stdout F ')?.text, '\n');
  assert.equal(parseLogLine('cri', '2024-05-01T10:00:00.5Z stdout F')?.text, '\n');
  assert.deepEqual(parseLogLine('cri', '2024-05-01T10:00:00.5Z stderr P half '), { time: '2024-05-01T10:00:00.5Z', stream: 'stderr', text: 'half ', partial: true });
});

test('readLog: stream filters apply before the tail; names that are not rotations are ignored', async () => {
  const d = await tmp();
  const f = path.join(d, 'rot.log');
  await writeFile(f + '.2', j('a\n', 'stdout', ts(1)) + j('b\n', 'stderr', ts(2)));
  await writeFile(f + '.1', j('c\n', 'stdout', ts(3)));
  await writeFile(f, j('d\n', 'stderr', ts(4)) + j('e\n', 'stdout', ts(5)));
  await writeFile(f + '.old', j('x\n', 'stdout', ts(9)));
  await writeFile(path.join(d, 'rot.log2'), j('y\n', 'stdout', ts(9)));
  const logs = async (o: Parameters<typeof readLog>[2]) => (await all(readLog(rootCtx(), { path: f, format: 'json-file', maxFiles: 3 }, o))).map((l) => l.split(':')[1].trim()).join('');
  assert.equal(await logs({}), 'abcde');
  assert.equal(await logs({ stderr: false }), 'ace');
  assert.equal(await logs({ stdout: false }), 'bd');
  assert.equal(await logs({ stdout: false, tail: 1 }), 'd');
  assert.equal(await logs({ since: at(2.5) }), 'cde');
  assert.equal(await logs({ until: at(1) }), 'a');
});

test('readLog: a CRI partial last line is left for later; a missing file reads as empty', async () => {
  const d = await tmp();
  const f = path.join(d, 'cri.log');
  await writeFile(f, cri('stdout', 'one', ts(1)) + cri('stderr', 'tw', ts(2), true) + cri('stderr', 'o', ts(2)) + '2024-05-01T10:00:03Z stdout F unfin');
  assert.deepEqual(await all(readLog(rootCtx(), { path: f, format: 'cri' })), ['stdout:one\n', 'stderr:tw', 'stderr:o\n']);
  assert.deepEqual(await all(readLog(rootCtx(), { path: path.join(d, 'missing.log'), format: 'json-file' })), []);
});

test('readLog: a line appended in two pieces, split inside a character, is yielded whole', async () => {
  const d = await tmp();
  const f = path.join(d, 'split.log');
  await writeFile(f, j('old\n', 'stdout', ts(1)));
  let stop!: () => void;
  const it = readLog(rootCtx(), { path: f, format: 'json-file' }, { follow: true, stop: new Promise<void>((r) => (stop = r)) });
  try {
    assert.equal((await it.next()).value?.text, 'old\n');
    const line = Buffer.from(j('n\u00e9w\n', 'stdout', ts(2)));
    const cut = line.indexOf(Buffer.from('\u00e9')) + 1;
    await appendFile(f, line.subarray(0, cut));
    const pending = it.next();
    await appendFile(f, line.subarray(cut));
    assert.equal((await pending).value?.text, 'n\u00e9w\n');
    stop();
    assert.equal((await it.next()).done, true);
  } finally {
    await it.return(undefined);
  }
});

test('readLog: ending a follow closes its directory watcher; an abort ends it too', async () => {
  const d = await tmp();
  const f = path.join(d, 'stop.log');
  await writeFile(f, j('x\n', 'stdout', ts(1)));
  const watchers = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
  const before = watchers();
  assert.deepEqual(await all(readLog(rootCtx(), { path: f, format: 'json-file' }, { follow: true, stop: Promise.resolve() })), ['stdout:x\n']);
  for (let i = 0; i < 100 && watchers() > before; i++) await new Promise((r) => setImmediate(r));
  assert.equal(watchers(), before);

  const ac = new AbortController();
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const r of readLog(rootCtx({ signal: ac.signal }), { path: f, format: 'json-file' }, { follow: true })) {
      seen.push(r.text);
      ac.abort();
    }
  }, { name: 'AbortError' });
  assert.deepEqual(seen, ['x\n']);
});
