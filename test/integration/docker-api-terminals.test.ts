import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dockerBin, dockerSkip, startDockerEngine, type DockerEngine } from '../helpers/docker.ts';
import { runWithStdinFile, writeStdinInputs } from '../helpers/stdin-file.ts';

/** stdin, terminals, attach, resize and detach keys through the docker CLI (test/helpers/docker.ts). */
describe('Docker API: stdin and terminals', { skip: dockerSkip }, () => {
  let de: DockerEngine;
  const prompt = /\/ # /;

  before(async () => {
    de = await startDockerEngine();
  });
  after(async () => {
    await de?.stop();
  });

  /** Poll a container's logs until they match (a tty's output reaches the log a moment after it is written). */
  async function logsMatch(name: string, re: RegExp): Promise<string> {
    for (let i = 0; ; i++) {
      const logs = await de.ok(['logs', name]);
      if (re.test(logs) || i === 100) return logs;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('docker run -i: piped stdin reaches the container and its end ends it', async () => {
    const r = await de.docker(['run', '-i', '--rm', de.e.image, 'cat'], { input: 'hi\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const lines = await de.ok(['run', '-i', '--rm', de.e.image, 'wc', '-l'], { input: 'a\nb\nc\n' });
    assert.equal(lines.trim(), '3');
    const exec = await de.docker(['run', '-i', '--rm', de.e.image, 'sh', '-c', 'read x; echo "got $x"; exit 4'], { input: 'word\n' });
    assert.equal(exec.code, 4);
    assert.equal(exec.stdout, 'got word\n');
  });

  test('docker run -it: a real terminal of the client size, its exit code', async () => {
    const r = await de.terminal(['run', '-it', '--rm', de.e.image, 'sh'], [{ after: prompt, send: 'tty; stty size; echo sum-$((6*7))\r' }, { after: /sum-42/, send: 'exit 3\r' }]);
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /\/dev\/pts\/\d+/);
    assert.match(r.output, /30 100/);
  });

  test('docker exec -it and docker exec -i', async () => {
    await de.ok(['run', '-dit', '--name', 'shell', de.e.image, 'sh']);
    const r = await de.terminal(['exec', '-it', 'shell', 'sh'], [{ after: prompt, send: 'tty; stty size; echo in-exec-$((2+2))\r' }, { after: /in-exec-4/, send: 'exit 5\r' }]);
    assert.equal(r.code, 5, r.output);
    assert.match(r.output, /\/dev\/pts\/\d+/);
    assert.match(r.output, /30 100/);
    assert.equal(await de.ok(['exec', '-i', 'shell', 'cat'], { input: 'through exec\n' }), 'through exec\n');
    await de.ok(['rm', '-f', 'shell']);
  });

  test('docker exec -i CID cat < file gives back all of a few MiB, its small last chunk too, every time', async () => {
    await de.ok(['run', '-d', '--name', 'catter', de.e.image, 'sleep', '600']);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-exec-stdin-'));
    try {
      const { data, file, empty, want } = writeStdinInputs(dir);
      for (let i = 0; i < 15; i++) {
        const r = await dockerFromFile(['exec', '-i', 'catter', 'cat'], file);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.length, data.length, `round ${i}: cat gave back ${r.stdout.length} of ${data.length} bytes`);
        assert.equal(createHash('sha256').update(r.stdout).digest('hex'), want, `round ${i}: what cat gave back differs`);
      }
      // No input at all still ends the command's stdin.
      const none = await dockerFromFile(['exec', '-i', 'catter', 'cat'], empty);
      assert.deepEqual([none.code, none.stdout.length], [0, 0], none.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await de.ok(['rm', '-f', 'catter']);
    }
  });

  /** docker ARGS with its stdin read from `file`, as a shell's `< file` gives it; stdout as bytes. */
  function dockerFromFile(args: string[], file: string): Promise<{ code: number; stdout: Buffer; stderr: string }> {
    return runWithStdinFile(dockerBin, args, file, de.env);
  }

  test('docker attach, then ctrl-p ctrl-q detaches and leaves the container running', async () => {
    await de.ok(['run', '-dit', '--name', 'attached', de.e.image, 'sh']);
    const r = await de.terminal(['attach', 'attached'], [{ send: 'echo attached-$((1+1))\r' }, { after: /attached-2/, send: '\x10\x11' }]);
    // docker's CLI reports the detach as an error: "read escape sequence", exit 1, as against dockerd.
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /read escape sequence/);
    assert.equal((await de.ok(['inspect', '-f', '{{.State.Status}}', 'attached'])).trim(), 'running');
    // Attached again, a command's exit ends the container.
    const again = await de.terminal(['attach', 'attached'], [{ send: 'exit 6\r' }]);
    assert.equal(again.code, 6, again.output);
    assert.equal((await de.ok(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'attached'])).trim(), 'exited 6');
    await de.ok(['rm', 'attached']);
  });

  test('the server detaches on the detach keys too; a bad key spec is 400', async () => {
    // cat, not a shell: the terminal echoes the line and cat writes it back, with no line editor that
    // may set the terminal up (and drop what was typed) after the input came.
    await de.ok(['run', '-dit', '--name', 'raw', de.e.image, 'cat']);
    for (const [query, keys] of [['', '\x10\x11'], ['&detachKeys=ctrl-x,x', '\x18x']]) {
      const sock = net.connect(de.sock);
      await new Promise((r) => sock.once('connect', r));
      sock.write(`POST /v1.50/containers/raw/attach?stream=1&stdin=1&stdout=1${query} HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
      await new Promise<void>((r) => {
        const check = () => (got.includes('\r\n\r\n') ? r() : sock.once('data', check));
        check();
      });
      assert.match(got, /^HTTP\/1.1 101/);
      const closed = new Promise((r) => sock.once('close', r));
      sock.write(`before-detach\r${keys}`);
      await closed;
    }
    assert.equal((await de.ok(['inspect', '-f', '{{.State.Status}}', 'raw'])).trim(), 'running');
    assert.match(await logsMatch('raw', /before-detach\s+before-detach[\s\S]*before-detach\s+before-detach/), /before-detach/);
    const bad = await de.request('POST', '/v1.50/containers/raw/attach?stream=1&stdin=1&detachKeys=ctrl-1');
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).message, /Invalid detach keys \(ctrl-1\) provided/);
    await de.ok(['rm', '-f', 'raw']);
  });

  test('POST /containers/{id}/resize reaches the terminal; resizing an unknown exec is 404', async () => {
    await de.ok(['run', '-dt', '--name', 'sized', de.e.image, 'sh', '-c', 'while :; do stty size; sleep 0.2; done']);
    const r = await de.request('POST', '/v1.50/containers/sized/resize?h=41&w=123');
    assert.equal(r.status, 200);
    assert.match(await logsMatch('sized', /41 123/), /41 123/);
    const missing = await de.request('POST', '/v1.50/exec/nope/resize?h=10&w=10');
    assert.equal(missing.status, 404);
    await de.ok(['rm', '-f', 'sized']);
  });
});
