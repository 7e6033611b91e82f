import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDaemon } from '../helpers/daemon.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { randomBridge, randomSubnet } from '../helpers/network.ts';

/**
 * `berth network ...` against a real berthd on its own root, with the
 * default network on a random bridge name and subnet. Creating networks
 * touches no host state (bridges appear when the first container joins).
 */
const root = process.getuid?.() === 0;
let d: TestDaemon;

before(async () => {
  if (!root) return;
  d = await startDaemon({ config: `version = 1\n[network]\nbridge = "${randomBridge()}"\nsubnet = "${randomSubnet()}"\nsubnet_pool = "10.252.0.0/16"\n` });
});
after(async () => {
  await d?.stop();
});

describe('berth network', { skip: !root && 'needs root' }, () => {
  it('creates, lists, inspects and removes networks with docker\'s output and exit codes', async () => {
    const ls = await d.cli(['network', 'ls']);
    assert.equal(ls.code, 0);
    assert.match(ls.stdout, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n[0-9a-f]{12}\s+bridge\s+bridge\s+local\n[0-9a-f]{12}\s+host\s+host\s+local\n[0-9a-f]{12}\s+none\s+null\s+local\n$/);
    const host = JSON.parse((await d.cli(['network', 'inspect', 'host'])).stdout)[0];
    assert.equal(host.Driver, 'host');
    assert.deepEqual(host.IPAM.Config, []);
    assert.match((await d.cli(['network', 'rm', 'none'])).stderr, /none is a pre-defined network and cannot be removed/);

    const subnet = randomSubnet();
    const created = await d.cli(['network', 'create', '--subnet', subnet, '--gateway', subnet.replace('0/24', '254'), '--label', 'env=test', '-o', 'com.docker.network.bridge.name=' + randomBridge(), 'front']);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);

    const dup = await d.cli(['network', 'create', 'front']);
    assert.equal(dup.code, 1);
    assert.equal(dup.stderr, 'Error response from daemon: network with name front already exists\n');
    const overlap = await d.cli(['network', 'create', '--subnet', subnet.replace('/24', '/16').replace(/\.\d+\.0\//, '.0.0/'), 'wide']);
    assert.equal(overlap.code, 1);
    assert.match(overlap.stderr, /Pool overlaps with other one on this address space/);

    const insp = await d.cli(['network', 'inspect', 'front']);
    assert.equal(insp.code, 0);
    const [info] = JSON.parse(insp.stdout) as Array<Record<string, any>>;
    assert.equal(info.Id, id);
    assert.equal(info.Name, 'front');
    assert.equal(info.Driver, 'bridge');
    assert.deepEqual(info.IPAM.Config, [{ Subnet: subnet, Gateway: subnet.replace('0/24', '254') }]);
    assert.deepEqual(info.Labels, { env: 'test' });
    assert.deepEqual(info.Containers, {});
    assert.ok(info.Created);
    const fmt = await d.cli(['network', 'inspect', '-f', '{{.Name}} {{.Labels.env}}', id.slice(0, 10)]);
    assert.equal(fmt.stdout, 'front test\n');

    const missing = await d.cli(['network', 'inspect', 'nope']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'Error response from daemon: network nope not found\n');
    assert.equal((await d.cli(['network', 'create'])).code, 125);
    assert.equal((await d.cli(['network', 'ls', '--bogus'])).code, 125);
    const filtered = await d.cli(['network', 'ls', '-q', '--filter', 'label=env=test', '--no-trunc']);
    assert.equal(filtered.stdout, `${id}\n`);

    const auto = await d.cli(['network', 'create', 'auto']);
    assert.equal(auto.code, 0);
    const autoInfo = JSON.parse((await d.cli(['network', 'inspect', 'auto'])).stdout)[0];
    assert.match(autoInfo.IPAM.Config[0].Subnet, /^10\.252\.\d+\.0\/24$/);

    const rmBridge = await d.cli(['network', 'rm', 'bridge']);
    assert.equal(rmBridge.code, 1);
    assert.match(rmBridge.stderr, /pre-defined network/);
    const rm = await d.cli(['network', 'rm', 'auto', 'nope']);
    assert.equal(rm.code, 1);
    assert.equal(rm.stdout, 'auto\n');
    assert.equal((await d.cli(['network', 'rm', '-f', 'nope'])).code, 0);

    const conn = await d.cli(['network', 'connect', 'front', 'nosuchcontainer']);
    assert.equal(conn.code, 1);
    // berthd resolves the container through the container service first: docker's message.
    assert.match(conn.stderr, /No such container: nosuchcontainer/);
    const port = await d.cli(['port', 'nosuchcontainer']);
    assert.equal(port.code, 1);

    // networks survive a crash of the daemon
    await d.kill();
    await d.restart();
    assert.match((await d.cli(['network', 'ls'])).stdout, /\sfront\s/);

    const prune = await d.cli(['network', 'prune', '-f']);
    assert.equal(prune.code, 0);
    assert.equal(prune.stdout, 'Deleted Networks:\nfront\n\n');
    const declined = await d.cli(['network', 'prune'], { input: 'n\n' });
    assert.equal(declined.code, 0);
    assert.match(declined.stdout, /Are you sure you want to continue\? \[y\/N\] $/);
  });

  it('lists networks in docker\'s natural order of names (n2 before n10), and formats them with --format', async () => {
    for (const name of ['n10', 'n2']) {
      const c = await d.cli(['network', 'create', '--subnet', randomSubnet(), '-o', 'com.docker.network.bridge.name=' + randomBridge(), name]);
      assert.equal(c.code, 0, c.stderr);
    }
    try {
      const ls = await d.cli(['network', 'ls']);
      assert.equal(ls.code, 0, ls.stderr);
      const names = ls.stdout.split('\n').slice(1).filter(Boolean).map((line) => line.split(/\s+/)[1]);
      assert.deepEqual(names, ['bridge', 'host', 'n2', 'n10', 'none']);
      const formatted = await d.cli(['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Internal}}', '--filter', 'name=n']);
      assert.equal(formatted.code, 0, formatted.stderr);
      assert.equal(formatted.stdout, 'n2 bridge false\nn10 bridge false\nnone null false\n');
      const json = await d.cli(['network', 'ls', '--format', 'json', '--filter', 'name=n2']);
      assert.deepEqual(Object.keys(JSON.parse(json.stdout)), ['ID', 'Name', 'Driver', 'Scope', 'IPv6', 'Internal', 'Labels', 'CreatedAt']);
      assert.match(JSON.parse(json.stdout).CreatedAt, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$/);
    } finally {
      await d.cli(['network', 'rm', 'n2', 'n10']);
    }
  });
});
