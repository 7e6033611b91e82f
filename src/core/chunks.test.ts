import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { chunksOf } from './chunks.ts';

test('chunksOf yields each chunk as written, never joined, even when the consumer falls behind', async () => {
  const s = new PassThrough();
  const written = [Buffer.from('a'.repeat(1000)), Buffer.from('b'.repeat(2000)), Buffer.from('c'.repeat(3000))];
  for (const c of written) s.write(c);
  s.end();
  // All three are buffered before the first read: a Readable's own iterator would hand back one joined buffer.
  await new Promise((r) => setImmediate(r));
  const got: Buffer[] = [];
  for await (const c of chunksOf(s)) got.push(c);
  assert.deepEqual(got.map((c) => c.length), [1000, 2000, 3000]);
  assert.ok(got.every((c, i) => c === written[i]), 'the very buffers written');
});

test('chunksOf pauses the stream while more than its bound waits, and resumes as it is read', async () => {
  let produced = 0;
  const s = new Readable({
    read() {
      if (produced >= 64) return this.push(null);
      produced++;
      this.push(Buffer.alloc(1024));
    },
  });
  const it = chunksOf(s, 4096);
  const first = await it.next();
  assert.equal(first.value?.length, 1024);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(s.isPaused(), 'paused past the bound');
  let n = 1;
  for await (const c of it) n += c.length > 0 ? 1 : 0;
  assert.equal(n, 64);
});

test('chunksOf throws the stream\'s error after what came before it, and a premature close', async () => {
  const s = new PassThrough();
  s.write(Buffer.from('x'));
  const got: number[] = [];
  const failing = (async () => {
    for await (const c of chunksOf(s)) {
      got.push(c.length);
      s.destroy(new Error('connection reset'));
    }
  })();
  await assert.rejects(failing, /connection reset/);
  assert.deepEqual(got, [1]);

  const closed = new PassThrough();
  const early = (async () => {
    for await (const c of chunksOf(closed)) void c;
  })();
  closed.destroy();
  await assert.rejects(early, (e) => (e as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE');
});

test('chunksOf destroys the stream when the consumer stops early', async () => {
  const s = new PassThrough();
  s.write(Buffer.from('x'));
  s.write(Buffer.from('y'));
  for await (const c of chunksOf(s)) {
    assert.equal(c.toString(), 'x');
    break;
  }
  assert.ok(s.destroyed);
});

test('chunksOf: an error the stream was destroyed with just before the consumer stopped is not an uncaught one', async () => {
  // As a pull does: the applier's failure destroys the download with its error, and the loop then stops.
  const src = new PassThrough();
  src.write(Buffer.from('a'));
  const it = chunksOf(src);
  await it.next();
  let uncaught: unknown;
  const onUncaught = (err: unknown) => (uncaught = err);
  process.prependListener('uncaughtException', onUncaught);
  try {
    src.destroy(new Error('refused by the applier'));
    await it.return!();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.equal(uncaught, undefined);
});
