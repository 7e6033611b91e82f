import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { criClient, rejectsWith } from '../helpers/cri.ts';
import { busyboxImage } from '../helpers/image-builder.ts';
import { pushToRegistry } from '../helpers/image-builder.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { startRegistry } from '../helpers/registry.ts';
import { startDaemon } from '../helpers/daemon.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, mknod, chown)' : undefined;

describe('CRI: Version, Status and the image service over cri.sock', { skip }, () => {
  let e: Engine;
  let cri: ReturnType<typeof criClient>;
  let socket: string;
  let ref: string;
  let imageId: string;
  before(async () => {
    e = await startEngine();
    // Not pulled by the engine: this image reaches berth only through the CRI.
    ref = await e.push('cri-only', busyboxImage([], { Cmd: ['sh'], User: '1234:5' }));
    socket = path.join(e.d.state, 'cri.sock');
    cri = criClient(socket);
  });
  after(async () => {
    cri?.close();
    await e?.stop();
  });

  it('serves on <state>/cri.sock with mode 0600', async () => {
    const st = await stat(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('Version names berth and CRI v1', async () => {
    const v = await cri.runtime('Version', { version: '0.1.0' });
    assert.equal(v.runtime_name, 'berth');
    assert.equal(v.runtime_api_version, 'v1');
    assert.equal(v.version, '0.1.0');
    assert.match(v.runtime_version, /^\d+\.\d+\.\d+/);
  });

  it('Status reports RuntimeReady and NetworkReady', async () => {
    const s = await cri.runtime('Status', {});
    const byType = new Map(s.status.conditions.map((c: any) => [c.type, c]));
    assert.equal((byType.get('RuntimeReady') as any)?.status, true, JSON.stringify(s));
    assert.equal((byType.get('NetworkReady') as any)?.status, true, JSON.stringify(s));
  });

  it('PullImage pulls from the registry into k8s.io and answers the image ID', async () => {
    const r = await cri.image('PullImage', { image: { image: ref } });
    assert.match(r.image_ref, /^sha256:[0-9a-f]{64}$/);
    imageId = r.image_ref;
    const k8s = await e.d.cli(['-n', 'k8s.io', 'images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.equal(k8s.code, 0, k8s.stderr);
    assert.ok(k8s.stdout.split('\n').includes(ref), k8s.stdout);
    const dflt = await e.d.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.ok(!dflt.stdout.split('\n').includes(ref), dflt.stdout);
  });

  it('ListImages lists it as containerd does, and filters by image', async () => {
    const all = await cri.image('ListImages', {});
    const img = all.images.find((i: any) => i.id === imageId);
    assert.ok(img, JSON.stringify(all));
    assert.deepEqual(img.repo_tags, [ref]);
    assert.equal(img.repo_digests.length, 1);
    assert.match(img.repo_digests[0], new RegExp(`^${ref.replace(/:1$/, '').replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`));
    assert.ok(Number(img.size) > 0);
    assert.equal(img.uid?.value, '1234');
    assert.equal(img.username, '');
    assert.equal(img.pinned, false);
    // The engine's own image lives in the default namespace only.
    assert.ok(!all.images.some((i: any) => i.repo_tags.includes(e.image)), JSON.stringify(all));
    const one = await cri.image('ListImages', { filter: { image: { image: ref } } });
    assert.deepEqual(one.images.map((i: any) => i.id), [imageId]);
    const none = await cri.image('ListImages', { filter: { image: { image: `${ref}-missing` } } });
    assert.deepEqual(none.images, []);
  });

  it('ImageStatus answers a known image (verbose with its config) and an empty one for an unknown image', async () => {
    const s = await cri.image('ImageStatus', { image: { image: ref }, verbose: true });
    assert.equal(s.image.id, imageId);
    const info = JSON.parse(s.info.info);
    assert.match(info.chainID, /^sha256:/);
    assert.equal(info.imageSpec.config.User, '1234:5');
    const byId = await cri.image('ImageStatus', { image: { image: imageId } });
    assert.equal(byId.image.id, imageId);
    assert.deepEqual(byId.info, {});
    const unknown = await cri.image('ImageStatus', { image: { image: `${e.registry.host}/no/such:image` } });
    assert.equal(unknown.image, null);
  });

  it('ImageFsInfo reports the snapshots file system in use', async () => {
    const r = await cri.image('ImageFsInfo', {});
    assert.equal(r.image_filesystems.length, 1);
    const fs = r.image_filesystems[0];
    assert.ok(fs.fs_id.mountpoint.startsWith(e.d.root), fs.fs_id.mountpoint);
    assert.ok(Number(fs.used_bytes.value) > 0);
    assert.ok(Number(fs.inodes_used.value) > 0);
    assert.ok(BigInt(fs.timestamp) > 0n);
  });

  it('RemoveImage removes it, then ImageStatus is empty; removing again succeeds', async () => {
    await cri.image('RemoveImage', { image: { image: ref } });
    const s = await cri.image('ImageStatus', { image: { image: ref } });
    assert.equal(s.image, null);
    await cri.image('RemoveImage', { image: { image: ref } });
    const k8s = await e.d.cli(['-n', 'k8s.io', 'images', '-q']);
    assert.equal(k8s.stdout.trim(), '');
  });

  it('a missing image is NOT_FOUND, a malformed reference INVALID_ARGUMENT', async () => {
    const missing = await rejectsWith(cri.image('PullImage', { image: { image: `${e.registry.host}/no/such:image` } }), grpc.status.NOT_FOUND);
    assert.match(missing.details, /no\/such/);
    await rejectsWith(cri.image('PullImage', { image: { image: 'Bad Reference!' } }), grpc.status.INVALID_ARGUMENT);
    await rejectsWith(cri.image('PullImage', { image: { image: '' } }), grpc.status.INVALID_ARGUMENT);
  });

  it('methods not served answer UNIMPLEMENTED naming the method', async () => {
    const err = await cri.raw('/runtime.v1.RuntimeService/CheckpointContainer');
    assert.equal(err?.code, grpc.status.UNIMPLEMENTED);
    assert.match(err!.details, /CheckpointContainer/);
    const unknown = await cri.raw('/runtime.v1.ImageService/NoSuchMethod');
    assert.equal(unknown?.code, grpc.status.UNIMPLEMENTED);
    assert.match(unknown!.details, /NoSuchMethod/);
  });

  it("PullImage uses the request's AuthConfig for that pull only", async () => {
    const secure = await startRegistry({ auth: 'basic' });
    try {
      const layout = path.join(e.d.dir, 'private-layout');
      const { buildImage } = await import('../helpers/image-builder.ts');
      await buildImage(layout, busyboxImage(), { tag: '1' });
      const priv = `${secure.host}/private/img:1`;
      await pushToRegistry(layout, priv, { tag: '1', creds: `${secure.user}:${secure.password}` });
      await rejectsWith(cri.image('PullImage', { image: { image: priv } }), grpc.status.UNAUTHENTICATED);
      const auth = Buffer.from(`${secure.user}:${secure.password}`).toString('base64');
      const r = await cri.image('PullImage', { image: { image: priv }, auth: { auth, server_address: secure.host } });
      assert.match(r.image_ref, /^sha256:/);
      // The credentials were neither stored nor kept for later pulls.
      await cri.image('RemoveImage', { image: { image: priv } });
      await rejectsWith(cri.image('PullImage', { image: { image: priv } }), grpc.status.UNAUTHENTICATED);
      const withUser = await cri.image('PullImage', { image: { image: priv }, auth: { username: secure.user, password: secure.password } });
      assert.equal(withUser.image_ref, r.image_ref);
      await cri.image('RemoveImage', { image: { image: priv } });
    } finally {
      await secure.stop();
    }
  });
});

describe('CRI: the [cri] config section', { skip }, () => {
  it('cri.address moves the socket, with daemon.socket_mode; cri.enabled = false serves none', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-cri-cfg-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const address = path.join(dir, 'sock', 'k.sock');
    const moved = await startDaemon({ config: `version = 1\n[daemon]\nsocket_mode = "0660"\n[cri]\naddress = "${address}"\n` });
    try {
      const st = await stat(address);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o660);
      await assert.rejects(stat(path.join(moved.state, 'cri.sock')));
      const cri = criClient(address);
      try {
        assert.equal((await cri.runtime('Version', {})).runtime_name, 'berth');
      } finally {
        cri.close();
      }
    } finally {
      await moved.stop();
    }
    await assert.rejects(stat(address), 'the socket is removed when berthd stops');
    const off = await startDaemon({ config: 'version = 1\n[cri]\nenabled = false\n' });
    try {
      await assert.rejects(stat(path.join(off.state, 'cri.sock')));
      assert.doesNotMatch(off.logs(), /CRI listening/);
    } finally {
      await off.stop();
    }
  });
});
