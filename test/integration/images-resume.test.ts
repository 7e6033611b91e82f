import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, xattrs)' : undefined;

/**
 * A proxy to the registry that, while `stall` names a blob, passes only its
 * first `stallAfter` bytes and then holds the connection open; it records
 * the Range header of every GET of the blob `watch` names.
 */
async function stallingProxy(target: number, stallAfter: number) {
  const state = { stall: '', watch: '', ranges: [] as string[], sent: 0 };
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const stalled = state.stall && req.method === 'GET' && req.url?.endsWith(`/blobs/${state.stall}`);
    if (req.method === 'GET' && state.watch && req.url?.endsWith(`/blobs/${state.watch}`)) state.ranges.push(String(req.headers.range ?? 'none'));
    const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!stalled) return void ur.pipe(res);
      let n = 0;
      ur.on('data', (c: Buffer) => {
        if (n >= stallAfter) return;
        const part = c.subarray(0, stallAfter - n);
        n += part.length;
        state.sent = n;
        res.write(part);
        if (n >= stallAfter) {
          ur.destroy();
          held.push(res);
        }
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Bytes of the partial download of a blob of `size` bytes in the daemon's content store. */
async function ingestedBytes(root: string, size: number): Promise<number> {
  const dir = path.join(root, 'content/ingest');
  for (const ref of await readdir(dir).catch(() => [] as string[])) {
    const total = await readFile(path.join(dir, ref, 'total'), 'utf8').catch(() => '');
    if (Number(total) !== size) continue;
    const st = await stat(path.join(dir, ref, 'data')).catch(() => undefined);
    return st?.size ?? 0;
  }
  return 0;
}

describe('images: an interrupted pull resumes', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-resume-'));
    reg = await startRegistry();
    d = await startDaemon({ config: 'version = 1\n[registry]\nprogress_timeout_s = 0\n' });
  });
  after(async () => {
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('after berthd is killed mid-download, the next pull asks only for the rest', async () => {
    const layout = path.join(work, 'big');
    await buildImage(layout, busyboxImage([{ files: [{ path: 'big', size: 6_000_000, fill: 'random' }], compression: 'none' }]), { tag: '1' });
    await pushToRegistry(layout, `${reg.host}/resume/img:1`);
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
    const manifest = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    const big = manifest.layers[1].digest as string;
    const bigSize = manifest.layers[1].size as number;
    const proxy = await stallingProxy(reg.port, 2_000_000);
    try {
      proxy.state.stall = big;
      proxy.state.watch = big;
      const ref = `${proxy.host}/resume/img:1`;
      const first = d.cli(['pull', ref]);
      const deadline = Date.now() + 60_000;
      while (proxy.state.sent < 2_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Let the daemon write what it received before it dies.
      while (Date.now() < deadline && (await ingestedBytes(d.root, bigSize)) < 1_000_000) await new Promise((r) => setTimeout(r, 50));
      await d.kill();
      await first;
      await cleanupDaemonMounts(d);
      await d.restart();
      proxy.state.stall = '';
      const r = await d.cli(['pull', ref]);
      assert.equal(r.code, 0, r.stderr + d.logs());
      const resumed = proxy.state.ranges.at(-1) ?? '';
      assert.match(resumed, /^bytes=[1-9]\d*-$/, `ranges seen: ${proxy.state.ranges.join(', ')}`);
      const info = JSON.parse((await d.cli(['image', 'inspect', ref])).stdout)[0];
      assert.equal(info.RootFS.Layers.length, 2);
    } finally {
      await proxy.close();
    }
  });
});
