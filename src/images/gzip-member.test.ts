import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { GzipMember } from './gzip-member.ts';

/** Runs `chunks` through a GzipMember as the layer commit does and returns the whole member. */
async function member(level: number, chunks: Buffer[]): Promise<Buffer> {
  const m = new GzipMember(level, 256 * 1024);
  const out: Buffer[] = [m.header()];
  const read = (async () => {
    for await (const c of m.deflate) out.push(c as Buffer);
  })();
  for (const c of chunks) {
    await m.before(c);
    if (!m.deflate.write(c)) await new Promise((r) => m.deflate.once('drain', r));
  }
  m.deflate.end();
  await read;
  out.push(m.trailer());
  return Buffer.concat(out);
}

function text(bytes: number, seed: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'return', 'const', 'import', 'value', 'index', 'stream'];
  let s = '';
  for (let i = seed; s.length < bytes; i++) s += `${words[(i * 7) % words.length]} ${(i * 7919) % 100000}${i % 11 === 0 ? '\n' : ' '}`;
  return Buffer.from(s.slice(0, bytes));
}

test('a layer with nothing compressed in it comes out byte for byte as zlib gzip writes it', async () => {
  const input = [text(300_000, 1), text(70_000, 2), text(10, 3), text(256 * 1024, 4)];
  for (const level of [1, 6, 9, constants.Z_DEFAULT_COMPRESSION]) {
    const got = await member(level, input);
    assert.deepEqual(got, gzipSync(Buffer.concat(input), { level }), `level ${level}`);
  }
});

test('compressed stretches are stored, and the member still reads back whole, by zlib and by gzip(1)', async () => {
  const packed = gzipSync(text(2_000_000, 5), { level: 9 });
  const input = [text(200_000, 6), randomBytes(300_000), packed.subarray(0, 256 * 1024), text(100_000, 7), randomBytes(1000), packed.subarray(256 * 1024)];
  const whole = Buffer.concat(input);
  const got = await member(1, input);
  assert.deepEqual(gunzipSync(got), whole);
  const gz = spawnSync('gzip', ['-dc'], { input: got, maxBuffer: 16 << 20 });
  assert.equal(gz.status, 0, gz.stderr.toString());
  assert.deepEqual(gz.stdout, whole);
  // Stored, not deflated: the random and packed stretches pass through at their size plus block framing, and the
  // output differs from a plain gzip of the same bytes (which deflates them, to no gain).
  assert.notDeepEqual(got, gzipSync(whole, { level: 1 }));
  assert.ok(got.length < gzipSync(whole, { level: 1 }).length + 64, 'storing costs no more than deflating incompressible bytes');
});

test('the same chunks give the same member', async () => {
  const input = [text(100_000, 8), randomBytes(200_000), text(100_000, 9)];
  assert.deepEqual(await member(1, input), await member(1, input));
});

test('a level change on a stream that has failed or ended neither throws nor waits', async () => {
  const m = new GzipMember(1, 256 * 1024);
  m.deflate.destroy();
  await m.before(randomBytes(200_000));
  const n = new GzipMember(1, 256 * 1024);
  n.deflate.end();
  n.deflate.resume();
  await n.before(randomBytes(200_000));
});

test('a reader that fails and drains on, as the layer commit does, lets every level change finish', async () => {
  // The commit's store loop: the first failed write is kept, the compressor is read to its end, never destroyed.
  const m = new GzipMember(1, 256 * 1024);
  let failure: unknown;
  let stored = 0;
  const reading = (async () => {
    for await (const c of m.deflate.iterator({ destroyOnReturn: false })) {
      if (failure !== undefined) continue;
      if (stored > 0) failure = new Error('no space left on device');
      else stored += (c as Buffer).length;
    }
  })();
  for (let i = 0; i < 8; i++) {
    const c = i % 2 ? randomBytes(300_000) : text(300_000, i);
    await m.before(c);
    if (!m.deflate.write(c)) await new Promise((r) => m.deflate.once('drain', r));
  }
  m.deflate.end();
  await reading;
  assert.ok(failure instanceof Error, 'the write failure is kept for the caller');
});
