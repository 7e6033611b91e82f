import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';

/**
 * A container's network comes up while the runtime creates its task. When
 * the network fails after the task was created, the start fails with the
 * plugin's message and takes everything back: the created task and its
 * monitor, the netns, the veth, addresses and rules. The failing plugin
 * (the firewall, forced on) is slow on purpose, so the task is created
 * first.
 */
describe('a network that fails while the task is created', { timeout: 300_000, skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  let e: Engine;
  let plugins: string;

  before(async () => {
    plugins = await mkdtemp(path.join(os.tmpdir(), 'berth-plugins-'));
    for (const p of ['bridge', 'host-local', 'loopback']) await symlink(`/usr/lib/cni/${p}`, path.join(plugins, p));
    await writeFile(path.join(plugins, 'firewall'), `#!/bin/sh\ncat >/dev/null\nsleep 0.5\nprintf '{"code":7,"msg":"firewall fails on purpose"}'\nexit 1\n`);
    await chmod(path.join(plugins, 'firewall'), 0o755);
    e = await startEngine({ extraConfig: `plugin_dirs = ["${plugins}"]\nfirewall = "true"\n` });
  });
  after(async () => {
    if (e) await e.stop();
    await rm(plugins, { recursive: true, force: true });
  });

  it('fails the start with the plugin\'s message and leaves no task, netns, veth, address or rule', async () => {
    const r = await e.d.cli(['run', '-d', '--name', 'doomed', '-p', '127.0.0.1::80', e.image, 'sleep', '100']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /firewall fails on purpose/);
    const id = (await e.d.cli(['inspect', '-f', '{{.Id}}', 'doomed'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal((await e.d.cli(['inspect', '-f', '{{.State.Running}}', 'doomed'])).stdout.trim(), 'false');
    assert.deepEqual(await readdir(path.join(e.d.state, 'netns')).catch(() => []), [], 'no netns file');
    assert.deepEqual(await readdir(path.join(e.d.state, 'tasks', 'default')).catch(() => []), [], 'no task');
    const runc = execFileSync('runc', ['--root', path.join(e.d.state, 'runtime', 'runc', 'default'), 'list', '-q'], { encoding: 'utf8' }).trim();
    assert.equal(runc, '', 'no runc container');
    const veths = execFileSync('ip', ['-o', 'link', 'show', 'master', e.bridge], { encoding: 'utf8' }).trim();
    assert.equal(veths, '', 'no veth on the bridge');
    assert.ok(!execFileSync('iptables-save', { encoding: 'utf8' }).includes(id), 'no rule of the container');
    const ipam = path.join(e.d.root, 'network', 'ipam');
    for (const n of await readdir(ipam).catch(() => [] as string[])) {
      const files = (await readdir(path.join(ipam, n))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
      assert.deepEqual(files, [], `no address left in ${n}`);
    }
    assert.equal((await e.d.cli(['rm', 'doomed'])).code, 0);
  });
});
