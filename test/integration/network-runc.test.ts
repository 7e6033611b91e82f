import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../../src/core/context.ts';
import { newId } from '../../src/core/ids.ts';
import type { SetupResult } from '../../src/network/types.ts';
import type { TestBundle } from '../helpers/bundle.ts';
import { makeBundle } from '../helpers/bundle.ts';
import type { TestNet } from '../helpers/network.ts';
import { bridgeOf, openTestNet, randomSubnet, sh } from '../helpers/network.ts';

/**
 * The contract with the runtime, end to end: a runc container joins the
 * netns from setupContainer and bind-mounts its hosts, resolv.conf and
 * hostname files; inside it, a peer resolves by name and alias and answers
 * ping. This is what the container service will do.
 */
const ctx = rootCtx();
const root = process.getuid?.() === 0;
let t: TestNet;
const bundles: TestBundle[] = [];

before(async () => {
  if (root) t = await openTestNet();
});
after(async () => {
  for (const b of bundles) await b.cleanup();
  await t?.close();
});

async function runIn(net: SetupResult, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const b = await makeBundle(args);
  bundles.push(b);
  for (const applet of ['ping', 'hostname']) await symlink('busybox', path.join(b.bundle, 'rootfs/bin', applet)).catch((e) => { if (e.code !== 'EEXIST') throw e; });
  const cfgPath = path.join(b.bundle, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  cfg.hostname = net.hostname;
  cfg.linux.namespaces = cfg.linux.namespaces.map((n: { type: string }) => (n.type === 'network' ? { type: 'network', path: net.netnsPath } : n));
  for (const [dest, src] of [['/etc/hosts', net.hostsPath], ['/etc/resolv.conf', net.resolvConfPath], ['/etc/hostname', net.hostnamePath]]) {
    cfg.mounts.push({ destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate'] });
  }
  await writeFile(cfgPath, JSON.stringify(cfg));
  return sh('runc', ['run', '--bundle', b.bundle, `berth-net-${randomBytes(4).toString('hex')}`]);
}

describe('a runc container on a berth network', { skip: !root && 'needs root' }, () => {
  it('resolves and reaches its peers through the files and netns it was given', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'rt1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const a = { containerId: newId(), namespace: 'default', name: 'app', hostname: 'app-host', attachment: { mode: 'rt1', dns: ['192.0.2.53'] } };
    const b = { containerId: newId(), namespace: 'default', name: 'db', attachment: { mode: 'rt1', aliases: ['database'] } };
    const ra = await t.svc.setupContainer(ctx, a);
    await t.svc.setupContainer(ctx, b);
    const r = await runIn(ra, ['sh', '-c', 'hostname; cat /etc/resolv.conf; ping -c1 -W2 database >/dev/null && echo reached-alias; ping -c1 -W2 db >/dev/null && echo reached-name']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'app-host\nnameserver 192.0.2.53\nreached-alias\nreached-name\n');
    for (const c of [a, b]) await t.svc.teardownContainer(ctx, c.containerId);
    await t.svc.removeNetwork(ctx, 'rt1');
  });
});
