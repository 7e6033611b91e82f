import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'node:test';
import { checkPortStream } from './portforward.ts';
import { exitStatus, pumpOutput, readSizes, type TerminalSize } from './remotecommand.ts';

test('resize objects split anywhere, back to back or on lines, bad ones skipped', async () => {
  const src = new PassThrough();
  const sizes: TerminalSize[] = [];
  readSizes(src, (s) => sizes.push(s));
  src.write('{"Width":80,');
  src.write('"Height":24}\n{"Width":100,"Height":40}{"Width":0,"Height":5}{nope}');
  src.end('{"Height":30,"Width":90}');
  await new Promise((r) => src.once('end', r));
  assert.deepEqual(sizes, [
    { width: 80, height: 24 },
    { width: 100, height: 40 },
    { width: 90, height: 30 },
  ]);
});

function sink(): Writable & { text: () => string } {
  const parts: Buffer[] = [];
  const w = new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }) as Writable & { text: () => string };
  w.text = () => Buffer.concat(parts).toString();
  return w;
}

test('non-tty output is split from the monitor\'s framing into stdout and stderr, even across chunks', async () => {
  const frame = (n: number, s: string) => Buffer.concat([Buffer.from([n, 0, 0, 0, 0, 0, 0, Buffer.byteLength(s)]), Buffer.from(s)]);
  const all = Buffer.concat([frame(1, 'out1 '), frame(2, 'err'), frame(1, 'out2'), frame(3, 'ignored')]);
  for (let cut = 0; cut < all.length; cut += 3) {
    const src = new PassThrough();
    const out = sink();
    const err = sink();
    const done = pumpOutput(src, false, out, err);
    src.write(all.subarray(0, cut));
    src.end(all.subarray(cut));
    await done;
    assert.equal(out.text(), 'out1 out2');
    assert.equal(err.text(), 'err');
  }
  // A stream the client did not ask for is dropped; a tty's output is raw.
  const src = new PassThrough();
  const out = sink();
  const done = pumpOutput(src, true, out, undefined);
  src.end(Buffer.from([1, 2, 3]));
  await done;
  assert.deepEqual(Buffer.from(out.text()), Buffer.from([1, 2, 3]));
});

test('port-forward stream headers are checked as kubelet checks them', () => {
  assert.equal(checkPortStream({ port: ['80'], streamtype: ['data'] }), undefined);
  assert.equal(checkPortStream({ streamtype: ['data'] }), '"port" header is required');
  assert.match(checkPortStream({ port: ['0'], streamtype: ['data'] })!, /unable to parse "0"/);
  assert.match(checkPortStream({ port: ['x'], streamtype: ['error'] })!, /unable to parse/);
  assert.equal(checkPortStream({ port: ['80'] }), '"streamType" header is required');
  assert.equal(checkPortStream({ port: ['80'], streamtype: ['stdin'] }), 'invalid stream type "stdin"');
});

test('a non-zero exit is reported as client-go decodes it', () => {
  const st = exitStatus(['sh', '-c', 'exit 3'], 3);
  assert.deepEqual(JSON.parse(JSON.stringify(st)), {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  });
});
