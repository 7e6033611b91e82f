import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import {
  adler32,
  decodeHeaderBlock,
  encodeControl,
  encodeData,
  encodeHeaderBlock,
  FrameReader,
  FrameType,
  HEADER_DICTIONARY,
  HeaderDeflater,
  HeaderInflater,
  SpdyProtocolError,
} from './spdy-frames.ts';

test('the header dictionary is the draft\'s 1423 bytes', () => {
  assert.equal(HEADER_DICTIONARY.length, 1423);
  assert.equal(HEADER_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
  assert.ok(HEADER_DICTIONARY.toString('latin1').endsWith(',*,enq=0.'));
  assert.equal(adler32(Buffer.from('Wikipedia')), 0x11e60398);
});

test('header blocks: names lower case, values joined by NUL, bad blocks refused', () => {
  const block = encodeHeaderBlock({ streamtype: ['stdout'], port: ['80', '81'] });
  assert.deepEqual({ ...decodeHeaderBlock(block) }, { streamtype: ['stdout'], port: ['80', '81'] });
  assert.equal(block.readUInt32BE(0), 2);
  assert.throws(() => decodeHeaderBlock(block.subarray(0, block.length - 1)), SpdyProtocolError);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x41, 0, 0, 0, 0])), /not lower case/);
  const dup = Buffer.concat([Buffer.from([0, 0, 0, 2]), encodeHeaderBlock({ a: ['1'] }).subarray(4), encodeHeaderBlock({ a: ['2'] }).subarray(4)]);
  assert.throws(() => decodeHeaderBlock(dup), /twice/);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0xff, 0xff, 0xff, 0xff])), /claims/);
});

test('frames split across reads and joined in one read come out whole', () => {
  const frames = Buffer.concat([encodeData(1, 1, Buffer.from('hello')), encodeControl(FrameType.PING, 0, Buffer.from([0, 0, 0, 1])), encodeData(3, 0, Buffer.alloc(0))]);
  for (let cut = 0; cut <= frames.length; cut++) {
    const r = new FrameReader();
    const out = [...r.push(frames.subarray(0, cut)), ...r.push(frames.subarray(cut))];
    assert.equal(out.length, 3, `cut at ${cut}`);
    assert.deepEqual(out[0], { kind: 'data', streamId: 1, flags: 1, data: Buffer.from('hello') });
    assert.equal(out[1].kind === 'control' && out[1].type, FrameType.PING);
    assert.equal(out[1].kind === 'control' && out[1].version, 3);
    assert.equal(r.pending, 0);
  }
  const big = Buffer.alloc(8);
  big.writeUInt32BE(0x80030001, 0);
  big.writeUInt32BE(0x00ffffff, 4);
  assert.throws(() => new FrameReader().push(big), /larger than/);
});

test('what the deflater writes, zlib inflates with the dictionary, block after block', async () => {
  const d = new HeaderDeflater();
  const inflate = zlib.createInflate({ dictionary: HEADER_DICTIONARY });
  const got: Buffer[] = [];
  inflate.on('data', (b: Buffer) => got.push(b));
  const blocks = [encodeHeaderBlock({}), encodeHeaderBlock({ streamtype: ['error'] }), Buffer.alloc(70_000, 7)];
  for (const b of blocks) {
    const c = d.compress(b);
    assert.deepEqual(c.subarray(-5), Buffer.from([0, 0, 0, 0xff, 0xff]), 'each block ends as a sync flush does');
    await new Promise<void>((resolve) => {
      inflate.write(c);
      inflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve());
    });
    assert.deepEqual(Buffer.concat(got.splice(0)), b);
  }
});

test('the inflater reads blocks zlib compressed against the dictionary and each other', async () => {
  const deflate = zlib.createDeflate({ dictionary: HEADER_DICTIONARY, level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (b: Buffer) => out.push(b));
  const compress = (b: Buffer) =>
    new Promise<Buffer>((resolve) => {
      deflate.write(b);
      deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve(Buffer.concat(out.splice(0))));
    });
  const inf = new HeaderInflater();
  const a = encodeHeaderBlock({ streamtype: ['data'], port: ['8080'], requestid: ['0'] });
  const b = encodeHeaderBlock({ streamtype: ['error'], port: ['8080'], requestid: ['0'] });
  const ca = await compress(a);
  const cb = await compress(b);
  assert.ok(cb.length < b.length / 2, 'the second block refers back to the first');
  assert.deepEqual(await inf.inflate(ca), a);
  assert.deepEqual(await inf.inflate(cb), b);
  inf.close();
});

test('the inflater refuses garbage and compression bombs', async () => {
  await assert.rejects(new HeaderInflater().inflate(Buffer.from('not zlib at all')), SpdyProtocolError);
  const bomb = zlib.deflateSync(Buffer.alloc(1 << 20), { dictionary: HEADER_DICTIONARY });
  await assert.rejects(new HeaderInflater({ maxBytes: 64 * 1024 }).inflate(bomb), /inflates past/);
});
