import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runProcess } from '../helpers/daemon.ts';
import { dockerSkip, startDockerEngine, type DockerEngine } from '../helpers/docker.ts';
import { randomBridge, randomSubnet } from '../helpers/network.ts';

/** docker volume, network, events and stats through the docker CLI (test/helpers/docker.ts). */
describe('Docker API: volumes, networks, events and stats', { skip: dockerSkip }, () => {
  let de: DockerEngine;
  const bridges: string[] = [];
  /** A user network on its own random bridge and subnet. */
  const createNetwork = async (name: string): Promise<string> => {
    const bridge = randomBridge();
    bridges.push(bridge);
    return (await de.ok(['network', 'create', '--subnet', randomSubnet(), '-o', `com.docker.network.bridge.name=${bridge}`, name])).trim();
  };

  before(async () => {
    de = await startDockerEngine();
  });
  after(async () => {
    if (!de) return;
    const ids = (await de.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await de.docker(['rm', '-f', ...ids]);
    await de.docker(['network', 'prune', '-f']);
    await de.stop();
    // Removing a network deletes its bridge; this is for a test that failed half-way.
    for (const b of bridges) await runProcess('ip', ['link', 'del', b]);
  });

  test('docker volume create, ls, inspect, rm and prune; errors in docker words', async () => {
    assert.equal((await de.ok(['volume', 'create', '--label', 'app=db', 'data'])).trim(), 'data');
    assert.match(await de.ok(['volume', 'ls']), /local\s+data\n/);
    assert.equal((await de.ok(['volume', 'ls', '-q', '--filter', 'label=app=db'])).trim(), 'data');
    assert.equal((await de.ok(['volume', 'ls', '-q', '--filter', 'label=app=web'])).trim(), '');
    const [v] = JSON.parse(await de.ok(['volume', 'inspect', 'data']));
    assert.equal(v.Name, 'data');
    assert.equal(v.Driver, 'local');
    assert.equal(v.Scope, 'local');
    assert.deepEqual(v.Labels, { app: 'db' });
    assert.match(v.Mountpoint, /\/volumes\/default\/data\/_data$/);

    const missing = await de.docker(['volume', 'inspect', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such volume: nope/);
    const r = await de.request('DELETE', '/v1.50/volumes/nope');
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.body), { message: 'No such volume: nope' });
    const bad = await de.docker(['volume', 'ls', '--filter', 'bogus=1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter 'bogus'/);

    await de.ok(['volume', 'create', 'spare']);
    await de.ok(['run', '-d', '--name', 'user', '-v', 'data:/data', de.e.image, 'sleep', '300']);
    const inUse = await de.docker(['volume', 'rm', 'data']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /volume is in use/);
    assert.equal((await de.request('DELETE', '/v1.50/volumes/data')).status, 409);
    assert.equal((await de.ok(['volume', 'ls', '-q', '--filter', 'dangling=true'])).trim(), 'spare');
    const pruned = await de.ok(['volume', 'prune', '-a', '-f']);
    assert.match(pruned, /Deleted Volumes:\nspare\n/);
    assert.doesNotMatch(pruned, /data/);
    await de.ok(['rm', '-f', 'user']);
    assert.equal((await de.ok(['volume', 'rm', 'data'])).trim(), 'data');
    assert.equal((await de.ok(['volume', 'ls', '-q'])).trim(), '');
  });

  test('docker run --security-opt seccomp=FILE: the CLI sends the profile, berthd applies it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-seccomp-'));
    try {
      const profile = path.join(dir, 'no-mkdir.json');
      writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
      const denied = await de.docker(['run', '--rm', '--security-opt', `seccomp=${profile}`, de.e.image, 'mkdir', '/tmp/d']);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /Operation not permitted/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('docker run -v NAME:/path: the data persists across two containers', async () => {
    await de.ok(['run', '--rm', '-v', 'kept:/data', de.e.image, 'sh', '-c', 'echo persisted > /data/file']);
    assert.equal((await de.ok(['volume', 'ls', '-q'])).trim(), 'kept', 'run -v NAME creates the named volume');
    assert.equal(await de.ok(['run', '--rm', '-v', 'kept:/other:ro', de.e.image, 'cat', '/other/file']), 'persisted\n');
    const ro = await de.docker(['run', '--rm', '-v', 'kept:/other:ro', de.e.image, 'touch', '/other/x']);
    assert.notEqual(ro.code, 0);
    await de.ok(['volume', 'rm', 'kept']);
  });

  test('docker network create, ls, inspect, connect, disconnect, rm and prune; containers reach each other by name', async () => {
    const id = await createNetwork('appnet');
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.match(await de.ok(['network', 'ls']), new RegExp(`${id.slice(0, 12)}\\s+appnet\\s+bridge\\s+local`));
    assert.equal((await de.ok(['network', 'ls', '-q', '--filter', 'name=appnet'])).trim(), id.slice(0, 12));
    const [n] = JSON.parse(await de.ok(['network', 'inspect', 'appnet']));
    assert.equal(n.Id, id);
    assert.equal(n.Driver, 'bridge');
    assert.equal(n.IPAM.Config.length, 1);

    await de.ok(['run', '-d', '--name', 'server', '--network', 'appnet', de.e.image, 'sleep', '300']);
    const ping = await de.docker(['run', '--rm', '--network', 'appnet', de.e.image, 'ping', '-c', '1', '-W', '5', 'server']);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, /1 packets received/);

    await createNetwork('second');
    // Before its start, inspect lists the networks named at create, with their aliases, as dockerd does
    // (compose reads them and connects only to the others); connecting one of them again is a conflict.
    const created = (await de.ok(['create', '--name', 'later', '--network', 'appnet', '--network-alias', 'api', '--network', 'second', de.e.image, 'sleep', '300'])).trim();
    const planned = JSON.parse(await de.ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'later']));
    assert.deepEqual(Object.keys(planned).sort(), ['appnet', 'second']);
    assert.deepEqual(planned.appnet.Aliases, ['api', created.slice(0, 12)]);
    const again = await de.docker(['network', 'connect', 'appnet', 'later']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    await de.ok(['start', 'later']);
    const joined = JSON.parse(await de.ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'later']));
    assert.deepEqual(Object.keys(joined).sort(), ['appnet', 'second']);
    assert.match(joined.second.IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
    const byAlias = await de.docker(['run', '--rm', '--network', 'appnet', de.e.image, 'ping', '-c', '1', '-W', '5', 'api']);
    assert.equal(byAlias.code, 0, byAlias.stdout + byAlias.stderr);
    await de.ok(['rm', '-f', 'later']);

    await de.ok(['network', 'connect', 'second', 'server']);
    const nets = JSON.parse(await de.ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'server']));
    assert.deepEqual(Object.keys(nets).sort(), ['appnet', 'second']);
    const twice = await de.docker(['network', 'connect', 'second', 'server']);
    assert.notEqual(twice.code, 0);
    await de.ok(['network', 'disconnect', 'second', 'server']);
    assert.deepEqual(Object.keys(JSON.parse(await de.ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'server']))), ['appnet']);

    const inUse = await de.docker(['network', 'rm', 'appnet']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /active endpoints/);
    // dockerd's 403 for a network in use and for the pre-defined ones.
    assert.equal((await de.request('DELETE', '/v1.50/networks/appnet')).status, 403);
    assert.equal((await de.request('DELETE', '/v1.50/networks/bridge')).status, 403);
    const missing = await de.docker(['network', 'inspect', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /network nope not found/);
    assert.equal((await de.request('DELETE', '/v1.50/networks/nope')).status, 404);
    const predefined = await de.docker(['network', 'rm', 'bridge']);
    assert.equal(predefined.code, 1);
    assert.match(predefined.stderr, /pre-defined network/);

    assert.equal((await de.ok(['network', 'rm', 'second'])).trim(), 'second');
    await de.ok(['rm', '-f', 'server']);
    assert.match(await de.ok(['network', 'prune', '-f']), /Deleted Networks:\nappnet\n/);
    assert.doesNotMatch(await de.ok(['network', 'ls']), /appnet/);
  });

  test('docker events --since/--until/--filter', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    await de.ok(['run', '--rm', '--name', 'evented', '--label', 'evented=yes', de.e.image, 'true']);
    const until = ((Date.now() + 1) / 1000).toFixed(3);
    const all = await de.ok(['events', '--since', since, '--until', until]);
    const actions = all.split('\n').filter(Boolean).map((l) => l.split(' ')[2]);
    assert.deepEqual(actions.filter((a) => ['create', 'start', 'die', 'destroy'].includes(a)), ['create', 'start', 'die', 'destroy']);
    assert.match(all, /container start [0-9a-f]{64} \(.*name=evented/);
    const started = await de.ok(['events', '--since', since, '--until', until, '--filter', 'event=start', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']);
    assert.equal(started, 'container start evented\n');
    const json = (await de.ok(['events', '--since', since, '--until', until, '--filter', 'container=evented', '--filter', 'event=die', '--format', '{{json .}}'])).trim();
    const e = JSON.parse(json);
    assert.equal(e.Type, 'container');
    assert.equal(e.status, 'die');
    assert.equal(e.Actor.Attributes.name, 'evented');
    assert.match(String(e.timeNano), /^\d{19}$/);
    assert.equal((await de.ok(['events', '--since', since, '--until', until, '--filter', 'container=other'])).trim(), '');
    // A container's events carry its labels, as dockerd's do: compose's `events` filters on its project label.
    const labelled = await de.ok(['events', '--since', since, '--until', until, '--filter', 'label=evented=yes', '--format', '{{.Action}} {{index .Actor.Attributes "evented"}}']);
    assert.deepEqual(labelled.split('\n').filter((l) => /^(create|start|die|destroy) /.test(l)), ['create yes', 'start yes', 'die yes', 'destroy yes']);
    const bad = await de.docker(['events', '--until', until, '--filter', 'bogus=1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter 'bogus'/);
  });

  test('docker stats --no-stream', async () => {
    await de.ok(['run', '-d', '--name', 'busy', de.e.image, 'sh', '-c', 'while :; do :; done']);
    const table = await de.ok(['stats', '--no-stream']);
    assert.match(table, /CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT/);
    assert.match(table, /busy\s+\d+\.\d+%\s+\S+ \/ \S+/);
    const row = (await de.ok(['stats', '--no-stream', '--format', '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}', 'busy'])).trim();
    const [name, cpu, mem, pids] = row.split('|');
    assert.equal(name, 'busy');
    assert.ok(Number(cpu.replace('%', '')) > 0, `a spinning container uses CPU: ${row}`);
    assert.match(mem, /^[\d.]+[KMG]i?B \/ [\d.]+[KMG]i?B$/);
    assert.equal(pids, '1');
    // Network counters of the container's own interfaces, as dockerd reports them (none with --network none).
    const gateway = (await de.ok(['inspect', '-f', '{{.NetworkSettings.Gateway}}', 'busy'])).trim();
    await de.docker(['exec', 'busy', 'ping', '-c', '2', '-W', '2', gateway]);
    const raw = JSON.parse((await de.request('GET', '/v1.50/containers/busy/stats?stream=0&one-shot=1')).body);
    assert.deepEqual(Object.keys(raw.networks), ['eth0']);
    assert.ok(raw.networks.eth0.tx_packets >= 2 && raw.networks.eth0.rx_bytes > 0, JSON.stringify(raw.networks));
    for (const k of ['rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped']) assert.equal(typeof raw.networks.eth0[k], 'number', k);
    assert.match(await de.ok(['stats', '--no-stream', '--format', '{{.NetIO}}', 'busy']), /^[1-9][\d.]*k?B \/ [1-9][\d.]*k?B\n$/);
    await de.ok(['run', '-d', '--name', 'isolated', '--network', 'none', de.e.image, 'sleep', '300']);
    assert.equal(JSON.parse((await de.request('GET', '/v1.50/containers/isolated/stats?stream=0&one-shot=1')).body).networks, undefined);
    await de.ok(['rm', '-f', 'isolated']);
    const missing = await de.docker(['stats', '--no-stream', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such container: nope/);
    await de.ok(['rm', '-f', 'busy']);
  });
});
