import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { rootCtx } from '../core/context.ts';
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
