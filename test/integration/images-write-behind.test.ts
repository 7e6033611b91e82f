import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, busyboxImage, busyboxRootfs, pushToRegistry, type BuiltImage } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, xattrs)' : undefined;

/** Chain IDs of an image's layers, as snapshots are named. */
function chainIdsOf(img: BuiltImage): string[] {
  const out: string[] = [];
  for (const l of img.layers) {
    const prev = out.at(-1);
    out.push(prev ? `sha256:${createHash('sha256').update(`${prev} ${l.diffId}`).digest('hex')}` : l.diffId);
  }
  return out;
}

/**
 * A pull answers before its layers are on disk (images/write-behind.ts).
 * Whether a reboot lost them is told by the kernel's boot ID, and this
 * machine cannot reboot under a test: the reboot is stood in for by a mark
 * of another boot, written as berthd writes them, while berthd is down.
 */
describe('images: pulled layers become durable behind the answer', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  const built: Record<string, BuiltImage> = {};
  const ref = (n: string) => `${reg.host}/wb/${n}:1`;
  const marks = () => path.join(d.root, 'write-behind.marks');
  const images = async () => (await d.cli(['images', '--format', '{{.Repository}}'])).stdout.split('\n').filter(Boolean).sort();
  const snapshots = async () => (await d.cli(['snapshot', 'ls'])).stdout.split('\n').slice(1).map((l) => l.split(/\s+/)[0]);
  const blobs = async () => (await d.cli(['content', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  const marksEmpty = async () => {
    while ((await readFile(marks(), 'utf8').catch(() => '')) !== '') await new Promise((r) => setTimeout(r, 20));
  };

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-wb-'));
    reg = await startRegistry();
    // a and b share the busybox layer; c has a base of its own.
    built.a = await buildImage(path.join(work, 'a'), busyboxImage([{ files: [{ path: 'etc/which', content: 'a\n' }] }]), { tag: '1' });
    built.b = await buildImage(path.join(work, 'b'), busyboxImage([{ files: [{ path: 'etc/which', content: 'b\n' }] }]), { tag: '1' });
    built.c = await buildImage(path.join(work, 'c'), { layers: [{ files: [...busyboxRootfs(), { path: 'etc/which', content: 'c\n' }] }], config: { Cmd: ['sh'] } }, { tag: '1' });
    for (const n of ['a', 'b', 'c']) await pushToRegistry(path.join(work, n), ref(n));
    d = await startDaemon();
  });
  after(async () => {
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a pull leaves a mark until its sync has run, and a container starts on the synced layers', async () => {
    const r = await d.cli(['pull', '-q', ref('a')]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    await marksEmpty();
    const run = await d.cli(['run', '--rm', '--network', 'none', ref('a'), 'cat', '/etc/which']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'a\n');
  });

  it('after a reboot, the layers a mark names are dropped with every image on them; other images stay and run', async () => {
    for (const n of ['b', 'c']) assert.equal((await d.cli(['pull', '-q', ref(n)])).code, 0);
    await marksEmpty();
    const lostSnapshots = chainIdsOf(built.a);
    const lostBlobs = built.a.layers.map((l) => l.digest);
    for (const s of lostSnapshots) assert.ok((await snapshots()).includes(s), `${s} is a snapshot before the restart`);
    await d.kill();
    // What a pull of a would have left had the machine gone down before its sync.
    await writeFile(marks(), `${JSON.stringify({ seq: 1, boot: 'an-earlier-boot', snapshots: lostSnapshots, blobs: lostBlobs })}\n`);
    await d.restart();

    // b stood on a's busybox layer, so it goes too; c does not.
    assert.deepEqual(await images(), [`${reg.host}/wb/c`]);
    const left = await snapshots();
    for (const s of [...lostSnapshots, chainIdsOf(built.b)[1]]) assert.ok(!left.includes(s), `${s} removed`);
    for (const s of chainIdsOf(built.c)) assert.ok(left.includes(s), `${s} kept`);
    const content = await blobs();
    for (const b of lostBlobs) assert.ok(!content.includes(b), `${b} removed`);
    assert.ok(content.includes(built.c.layers[0].digest));
    assert.equal(await readFile(marks(), 'utf8'), '', 'the marks are cleared once dealt with');
    assert.match(d.logs(), /dropped image layers pulled just before a reboot/);

    const c = await d.cli(['run', '--rm', '--network', 'none', ref('c'), 'cat', '/etc/which']);
    assert.equal(c.stdout, 'c\n', c.stderr);
    // Pulled again, from the registry, whole.
    assert.equal((await d.cli(['pull', '-q', ref('b')])).code, 0);
    const b = await d.cli(['run', '--rm', '--network', 'none', ref('b'), 'cat', '/etc/which']);
    assert.equal(b.stdout, 'b\n', b.stderr);
  });

  it('a mark of this boot (berthd stopped, the machine did not) is synced at start and drops nothing', async () => {
    await marksEmpty();
    await d.kill();
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    await writeFile(marks(), `${JSON.stringify({ seq: 3, boot, snapshots: chainIdsOf(built.b), blobs: built.b.layers.map((l) => l.digest) })}\n`);
    await d.restart();
    assert.deepEqual(await images(), [`${reg.host}/wb/b`, `${reg.host}/wb/c`]);
    assert.equal(await readFile(marks(), 'utf8'), '');
    const b = await d.cli(['run', '--rm', '--network', 'none', ref('b'), 'cat', '/etc/which']);
    assert.equal(b.stdout, 'b\n', b.stderr);
  });

  it('a clean stop syncs and leaves no mark', async () => {
    assert.equal((await d.cli(['pull', '-q', ref('a')])).code, 0);
    const stopped = new Promise((r) => d.proc.once('exit', r));
    d.proc.kill('SIGTERM');
    await stopped;
    assert.equal(await readFile(marks(), 'utf8'), '');
    await d.restart();
    assert.deepEqual(await images(), [`${reg.host}/wb/a`, `${reg.host}/wb/b`, `${reg.host}/wb/c`]);
  });
});
