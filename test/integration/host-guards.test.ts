import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { busyboxImage } from '../helpers/image-builder.ts';
import { runtimeSkipReason } from '../helpers/tasks.ts';

/**
 * What a container may not do to the host through berth's own choices: a
 * mount over the container's root (every door), an image VOLUME on /, a
 * writable cgroup tree, and an anonymous volume left by a `run --rm` whose
 * start failed.
 */
function post(socket: string, p: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ socketPath: socket, path: p, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const ROOT_REFUSED = /destination can't be '\/'/;

describe('host guards', { skip: runtimeSkipReason(), timeout: 600_000 }, () => {
  let e: Engine;
  let src: string;
  before(async () => {
    e = await startEngine();
    src = await mkdtemp(path.join(os.tmpdir(), 'berth-root-bind-'));
  });
  after(async () => {
    await e?.stop();
    if (src) await rm(src, { recursive: true, force: true });
  });

  const noContainers = async () => assert.equal((await e.d.cli(['ps', '-aq'])).stdout, '', 'no container was created');

  it('refuses a bind over / from the CLI, leaving the source untouched', async () => {
    for (const mount of [`type=bind,src=${src},dst=/`, `type=bind,src=${src},dst=/tmp/..`, 'type=tmpfs,dst=/', 'type=volume,dst=/']) {
      const r = await e.d.cli(['run', '--rm', '--mount', mount, e.image, 'true']);
      assert.equal(r.code, 125, `${mount}: ${r.stderr}`);
      assert.match(r.stderr, ROOT_REFUSED, mount);
    }
    assert.deepEqual(await readdir(src), [], 'the runtime made nothing in the bind source');
    await noContainers();
    assert.equal((await e.d.cli(['volume', 'ls', '-q'])).stdout, '');
  });

  it('refuses a mount over / through the native and Docker APIs with 400', async () => {
    const native = await post(e.d.socket, '/containers/create', { image: e.image, cmd: ['true'], mounts: [{ type: 'bind', source: src, target: '/' }] });
    assert.equal(native.status, 400, native.body);
    assert.match(native.body, ROOT_REFUSED);
    const dockerSock = path.join(e.d.state, 'docker.sock');
    for (const host of [{ Binds: [`${src}:/`] }, { Mounts: [{ Type: 'bind', Source: src, Target: '/' }] }, { Tmpfs: { '/': '' } }]) {
      const r = await post(dockerSock, '/v1.45/containers/create', { Image: e.image, Cmd: ['true'], HostConfig: host });
      assert.equal(r.status, 400, `${JSON.stringify(host)}: ${r.body}`);
      assert.match(r.body, ROOT_REFUSED);
    }
    assert.deepEqual(await readdir(src), []);
    await noContainers();
  });

  it('refuses an image whose VOLUME is the root, leaving no volume behind', async () => {
    for (const [i, v] of ['', '/'].entries()) {
      const ref = await e.push(`rootvol${i}`, busyboxImage([], { Cmd: ['true'], Volumes: { '/data': {}, [v]: {} } }));
      assert.equal((await e.d.cli(['pull', ref])).code, 0);
      const r = await e.d.cli(['run', '--rm', ref]);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, ROOT_REFUSED);
    }
    await noContainers();
    assert.equal((await e.d.cli(['volume', 'ls', '-q'])).stdout, '', 'the image\'s other VOLUME left no anonymous volume');
  });

  it('removes the anonymous volumes of a run --rm whose start failed', async () => {
    const r = await e.d.cli(['run', '--rm', '-v', '/data', e.image, 'no-such-executable']);
    assert.equal(r.code, 127, r.stderr);
    const d = await e.d.cli(['run', '-d', '--rm', '-v', '/data', e.image, 'no-such-executable']);
    assert.equal(d.code, 127, d.stderr);
    await noContainers();
    assert.equal((await e.d.cli(['volume', 'ls', '-q'])).stdout, '');
    // Without --rm the volume stays with the container, and rm without -v keeps it, as docker does.
    const kept = await e.d.cli(['run', '-v', '/data', e.image, 'no-such-executable']);
    assert.equal(kept.code, 127);
    assert.equal((await e.d.cli(['rm', (await e.d.cli(['ps', '-aq'])).stdout.trim()])).code, 0);
    const left = (await e.d.cli(['volume', 'ls', '-q'])).stdout.trim();
    assert.match(left, /^[0-9a-f]{64}$/);
    assert.equal((await e.d.cli(['volume', 'rm', left])).code, 0);
  });

  it('gives a default container a read-only cgroup tree, a privileged one a writable one', async () => {
    const probe = 'touch /sys/fs/cgroup/probe && echo root-writable; mkdir /sys/fs/cgroup/pids/probe && rmdir /sys/fs/cgroup/pids/probe && echo pids-writable; true';
    const plain = await e.d.cli(['run', '--rm', e.image, 'sh', '-c', probe]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, '');
    assert.match(plain.stderr, /\/sys\/fs\/cgroup\/probe: Read-only file system/);
    const priv = await e.d.cli(['run', '--rm', '--privileged', e.image, 'sh', '-c', probe]);
    assert.equal(priv.code, 0, priv.stderr);
    assert.equal(priv.stdout, 'root-writable\npids-writable\n');
  });
});
