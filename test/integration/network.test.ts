import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../../src/core/context.ts';
import { kindOf } from '../../src/core/errors.ts';
import { newId } from '../../src/core/ids.ts';
import { cniNameOf } from '../../src/network/conflist.ts';
import { isMounted } from '../../src/network/netns.ts';
import type { SetupRequest } from '../../src/network/types.ts';
import type { TestNet } from '../helpers/network.ts';
import { bridgeOf, nodeBin, openTestNet, pingFrom, randomSubnet, serveIn, sh, tcpRead, udpAsk, udpEchoIn } from '../helpers/network.ts';
import { parsePublish } from '../../src/core/ports.ts';

/**
 * The network service with the real CNI plugins, real netns files, bridges
 * and iptables. Every test network has a random bridge name and subnet;
 * "containers" are bare netns files, and processes inside them are started
 * with nsenter. Name resolution is checked by bind-mounting the generated
 * hosts file over /etc/hosts in a private mount namespace.
 */
const ctx = rootCtx();
let t: TestNet;
const root = process.getuid?.() === 0;

before(async () => {
  if (root) t = await openTestNet();
});
after(async () => {
  if (!t) return;
  const names = t.svc.store.listNetworks().map((n) => cniNameOf(n.id));
  await t.close();
  const save = (await sh('iptables-save', [])).stdout;
  for (const n of names) assert.ok(!save.includes(n), `iptables rules of ${n} left behind`);
});

const req = (name: string, mode: string, extra: Partial<SetupRequest['attachment']> = {}): SetupRequest => ({
  containerId: newId(),
  namespace: 'default',
  name,
  attachment: { mode, ...extra },
});

/** A port p on 127.0.0.1 such that p and p+1 are both free now. */
async function freePortPair(): Promise<number> {
  const bindable = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
  for (;;) {
    const p = await bindable(0);
    if (p < 65535 && (await bindable(p + 1).then(() => true, () => false))) return p;
  }
}

/** Nothing of `networkIds` is left: netns files, mounts, iptables rules, allocations, veths on the bridges. */
async function assertClean(networkIds: string[]): Promise<void> {
  const nsFiles = await readdir(path.join(t.dir, 'netns')).catch(() => []);
  assert.deepEqual(nsFiles, [], 'netns files left');
  assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(t.dir), 'mounts left');
  const save = (await sh('iptables-save', [])).stdout;
  for (const id of networkIds) {
    assert.ok(!save.includes(cniNameOf(id)), `iptables rules of ${cniNameOf(id)} left`);
    const alloc = await readdir(path.join(t.dir, 'data/ipam', cniNameOf(id))).catch(() => []);
    assert.deepEqual(
      alloc.filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')),
      [],
      'IP allocations left',
    );
    const n = t.svc.store.findNetwork(id);
    if (n) {
      // A veth whose namespace was dropped (a container lost in a crash) goes when the kernel
      // frees that namespace, which it does in the background: wait for it, within bounds.
      const veths = async () => (JSON.parse((await sh('ip', ['-j', 'link', 'show', 'master', n.bridge])).stdout || '[]') as unknown[]).length;
      let left = await veths();
      for (let i = 0; i < 50 && left > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        left = await veths();
      }
      assert.equal(left, 0, `veths left on ${n.bridge}`);
    }
  }
  assert.deepEqual(await t.svc.cni.listCache(), [], 'CNI cache entries left');
}

describe('network service with CNI plugins', { skip: !root && 'needs root (netns, bridges, iptables)' }, () => {
  it('two containers on a user network reach each other by IP, name and alias; hosts files follow them', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'users1', subnet: randomSubnet(), labels: { team: 'a' } });
    t.bridges.add(bridgeOf(n));
    const a = req('alpha', 'users1', { aliases: ['web'], extraHosts: ['gw.test:10.1.2.3'], dns: ['192.0.2.10'], dnsSearch: ['example.test'] });
    const b = req('beta', 'users1');
    const ra = await t.svc.setupContainer(ctx, { ...a, hostname: 'alpha-host' });
    const rb = await t.svc.setupContainer(ctx, b);
    const ipA = ra.interfaces[0].ip;
    const ipB = rb.interfaces[0].ip;
    assert.notEqual(ipA, ipB);
    assert.ok(ipA.startsWith(n.IPAM.Config[0].Subnet.split('.').slice(0, 3).join('.')));

    assert.ok(await pingFrom(rb.netnsPath!, ipA), 'beta pings alpha by IP');
    assert.ok(await pingFrom(ra.netnsPath!, ipB), 'alpha pings beta by IP');
    assert.ok(await pingFrom(rb.netnsPath!, 'alpha', rb.hostsPath), 'beta resolves alpha by name');
    assert.ok(await pingFrom(rb.netnsPath!, 'web', rb.hostsPath), 'beta resolves alpha by alias');
    assert.ok(await pingFrom(ra.netnsPath!, 'beta', ra.hostsPath), 'alpha resolves beta (added after it) by name');

    const hostsA = await readFile(ra.hostsPath, 'utf8');
    assert.match(hostsA, new RegExp(`^${ipA.replace(/\./g, '\\.')}\\talpha-host alpha web$`, 'm'));
    assert.match(hostsA, /^10\.1\.2\.3\tgw\.test$/m);
    assert.match(hostsA, new RegExp(`^${ipB.replace(/\./g, '\\.')}\\tbeta ${b.containerId.slice(0, 12)}$`, 'm'));
    assert.equal(await readFile(ra.resolvConfPath, 'utf8'), 'search example.test\nnameserver 192.0.2.10\n');
    assert.equal(await readFile(ra.hostnamePath, 'utf8'), 'alpha-host\n');

    const info = await t.svc.inspectNetwork(ctx, 'users1');
    assert.equal(Object.keys(info.Containers).length, 2);
    assert.equal(info.Containers[a.containerId].IPv4Address, `${ipA}/24`);
    assert.deepEqual(info.Labels, { team: 'a' });
    await assert.rejects(t.svc.removeNetwork(ctx, 'users1'), (e) => kindOf(e) === 'PermissionDenied' && /active endpoints/.test((e as Error).message));

    const inode = (await stat(ra.hostsPath)).ino;
    await t.svc.teardownContainer(ctx, b.containerId);
    assert.ok(!(await readFile(ra.hostsPath, 'utf8')).includes('beta'), 'beta left alpha\'s hosts file');
    assert.equal((await stat(ra.hostsPath)).ino, inode, 'rewritten in place, so a bind mount sees it');
    await t.svc.teardownContainer(ctx, a.containerId);
    await t.svc.teardownContainer(ctx, a.containerId);
    await assertClean([n.Id]);
    await t.svc.removeNetwork(ctx, n.Id);
    assert.equal((await sh('ip', ['link', 'show', bridgeOf(n)])).code !== 0, true, 'bridge removed with its network');
  });

  it('publishes ports on loopback and the bridge address, picks free ports for -P and refuses taken ones', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'ports1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const a = req('srv', 'ports1', {
      ports: [
        { hostPort: 0, containerPort: 8080, protocol: 'tcp' },
        { hostIp: '127.0.0.1', hostPort: 0, containerPort: 9090, protocol: 'tcp' },
      ],
      publishAll: true,
    });
    const ra = await t.svc.setupContainer(ctx, { ...a, exposedPorts: ['7070/tcp', '8080/tcp', '5353/udp'] });
    assert.deepEqual(
      ra.ports.map((p) => `${p.containerPort}/${p.protocol}`),
      ['8080/tcp', '9090/tcp', '7070/tcp', '5353/udp'],
    );
    assert.ok(ra.ports.every((p) => p.hostPort > 0));
    const [p8080, p9090, p7070] = ra.ports;
    const servers = [await serveIn(ra.netnsPath!, 8080, 'a8080'), await serveIn(ra.netnsPath!, 9090, 'a9090'), await serveIn(ra.netnsPath!, 7070, 'a7070')];
    try {
      assert.equal(await tcpRead('127.0.0.1', p8080.hostPort), 'hello from a8080');
      assert.equal(await tcpRead(n.IPAM.Config[0].Gateway, p8080.hostPort), 'hello from a8080');
      assert.equal(await tcpRead('127.0.0.1', p9090.hostPort), 'hello from a9090');
      assert.equal(await tcpRead('127.0.0.1', p7070.hostPort), 'hello from a7070');
      assert.deepEqual(await t.svc.ports(ctx, 'srv', '9090/tcp'), [p9090]);
      await assert.rejects(t.svc.ports(ctx, 'srv', '1234'), (e) => kindOf(e) === 'NotFound');

      // the same host port again: refused, and nothing of the second container is left
      const b = req('clash', 'ports1', { ports: [{ hostPort: p8080.hostPort, containerPort: 80, protocol: 'tcp' }] });
      await assert.rejects(t.svc.setupContainer(ctx, b), (e) => kindOf(e) === 'Conflict' && new RegExp(`0\\.0\\.0\\.0:${p8080.hostPort} failed: port is already allocated`).test((e as Error).message));
      assert.equal(t.svc.store.getEndpoint(b.containerId), undefined);
      assert.ok(!(await readdir(path.join(t.dir, 'netns'))).includes(b.containerId));
      // a host process listening on the port
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      const port = (busy.address() as net.AddressInfo).port;
      try {
        const c = req('busy', 'ports1', { ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }] });
        await assert.rejects(t.svc.setupContainer(ctx, c), (e) => kindOf(e) === 'Conflict');
      } finally {
        busy.close();
      }
    } finally {
      for (const s of servers) await s.stop();
    }
    await t.svc.teardownContainer(ctx, a.containerId);
    await assertClean([n.Id]);
    await assert.rejects(tcpRead('127.0.0.1', p8080.hostPort));
    await t.svc.removeNetwork(ctx, 'ports1');
  });

  it('publishes UDP ports and port ranges', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'udp1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const free = await freePortPair();
    const c = req('dns', 'udp1', {
      ports: [
        { hostIp: '127.0.0.1', hostPort: 0, containerPort: 5353, protocol: 'udp' },
        ...parsePublish(`127.0.0.1:${free}-${free + 1}:7000-7001`),
      ],
    });
    const r = await t.svc.setupContainer(ctx, c);
    assert.deepEqual(r.ports.slice(1).map((p) => [p.hostPort, p.containerPort]), [[free, 7000], [free + 1, 7001]]);
    assert.ok((await sh('iptables-save', ['-t', 'nat'])).stdout.includes(`dnat name: \\"${cniNameOf(n.Id)}\\" id: \\"${c.containerId}\\"`), 'UDP ports go through portmap');
    const echo = await udpEchoIn(r.netnsPath!, 5353);
    const srv = await serveIn(r.netnsPath!, 7001, 'range');
    try {
      assert.equal(await udpAsk('127.0.0.1', r.ports[0].hostPort, 'ping'), 'echo:ping');
      assert.equal(await tcpRead('127.0.0.1', free + 1), 'hello from range');
    } finally {
      await echo.stop();
      await srv.stop();
    }
    await t.svc.teardownContainer(ctx, c.containerId);
    await assertClean([n.Id]);
    await t.svc.removeNetwork(ctx, 'udp1');
  });

  it('masquerades outbound traffic: a server outside sees the host\'s address, not the container\'s', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'nat1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    // "outside": a namespace of this test behind a veth with its own subnet
    const outside = randomSubnet().replace(/0\/24$/, '');
    const ext = path.join(t.dir, 'ext-ns');
    const veth = `vx${randomBytes(3).toString('hex')}`;
    await writeFile(ext, '');
    await sh('unshare', [`--net=${ext}`, 'true']);
    const code = `require('net').createServer((s)=>s.end('from '+s.remoteAddress.replace(/^::ffff:/,''))).listen(7777,'0.0.0.0',()=>console.log('listening'))`;
    const server = spawn('nsenter', [`--net=${ext}`, nodeBin, '-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve) => server.stdout!.on('data', (d) => String(d).includes('listening') && resolve()));
      const ip = async (...args: string[]) => assert.equal((await sh('ip', args)).code, 0, `ip ${args.join(' ')}`);
      await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`);
      await ip('link', 'set', `${veth}p`, 'netns', String(server.pid));
      await ip('addr', 'add', `${outside}1/24`, 'dev', veth);
      await ip('link', 'set', veth, 'up');
      for (const args of [['addr', 'add', `${outside}2/24`, 'dev', `${veth}p`], ['link', 'set', `${veth}p`, 'up']]) {
        assert.equal((await sh('nsenter', [`--net=${ext}`, 'ip', ...args])).code, 0);
      }
      const c = req('natted', 'nat1');
      const r = await t.svc.setupContainer(ctx, c);
      const got = await sh('nsenter', [`--net=${r.netnsPath}`, '/bin/busybox', 'nc', '-w', '5', `${outside}2`, '7777']);
      assert.equal(got.stdout, `from ${outside}1`, got.stderr);
      await t.svc.teardownContainer(ctx, c.containerId);
    } finally {
      server.kill('SIGKILL');
      await sh('ip', ['link', 'del', veth]);
      await sh('umount', [ext]);
      await rm(ext, { force: true });
    }
    await assertClean([n.Id]);
    await t.svc.removeNetwork(ctx, 'nat1');
  });

  it('disconnect cuts connectivity and connect restores it', async () => {
    const n1 = await t.svc.createNetwork(ctx, { name: 'conn1', subnet: randomSubnet() });
    const n2 = await t.svc.createNetwork(ctx, { name: 'conn2', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n1)).add(bridgeOf(n2));
    const a = req('ca', 'conn1');
    const b = req('cb', 'conn2');
    const ra = await t.svc.setupContainer(ctx, a);
    const rb = await t.svc.setupContainer(ctx, b);
    const att = await t.svc.connect(ctx, { container: 'ca', network: 'conn2', aliases: ['second'] });
    assert.equal(att.ifName, 'eth1');
    await assert.rejects(t.svc.connect(ctx, { container: 'ca', network: 'conn2' }), (e) => kindOf(e) === 'Conflict');
    assert.ok(await pingFrom(rb.netnsPath!, 'second', rb.hostsPath), 'cb reaches ca on conn2 by alias');
    assert.ok((await readFile(ra.hostsPath, 'utf8')).includes('\tcb '), 'ca sees cb after connect');

    await t.svc.disconnect(ctx, { container: a.containerId, network: 'conn2' });
    assert.ok(!(await pingFrom(rb.netnsPath!, att.ip)), 'disconnected address unreachable');
    assert.ok(!(await readFile(rb.hostsPath, 'utf8')).includes('second'), 'alias gone from cb\'s hosts');
    await assert.rejects(t.svc.disconnect(ctx, { container: 'ca', network: 'conn2' }), (e) => kindOf(e) === 'NotFound');
    // A different address than before: cb's neighbour cache still holds the old MAC for the old one.
    const wanted = n2.IPAM.Config[0].Subnet.replace(/0\/24$/, '200');
    const again = await t.svc.connect(ctx, { container: 'ca', network: 'conn2', ipAddress: wanted });
    assert.equal(again.ip, wanted, 'a requested address is honoured');
    assert.ok(await pingFrom(rb.netnsPath!, wanted), 'connect restores connectivity');
    for (const c of [a, b]) await t.svc.teardownContainer(ctx, c.containerId);
    await assertClean([n1.Id, n2.Id]);
    assert.deepEqual((await t.svc.pruneNetworks(ctx)).sort(), ['conn1', 'conn2']);
  });

  it('joins several networks at setup (eth0, eth1) and is reachable on each', async () => {
    const n1 = await t.svc.createNetwork(ctx, { name: 'multi1', subnet: randomSubnet() });
    const n2 = await t.svc.createNetwork(ctx, { name: 'multi2', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n1)).add(bridgeOf(n2));
    const peer = req('peer2', 'multi2');
    const rp = await t.svc.setupContainer(ctx, peer);
    const hub = { ...req('hub', 'multi1'), moreNetworks: [{ network: 'multi2', aliases: ['hub-two'] }] };
    const rh = await t.svc.setupContainer(ctx, hub);
    assert.deepEqual(
      rh.interfaces.map((i) => [i.network, i.ifName]),
      [['multi1', 'eth0'], ['multi2', 'eth1']],
    );
    assert.ok(await pingFrom(rp.netnsPath!, 'hub-two', rp.hostsPath), 'peer on multi2 reaches hub by its multi2 alias');
    await assert.rejects(t.svc.setupContainer(ctx, { ...req('twice', 'multi1'), moreNetworks: [{ network: 'multi1' }] }), (e) => kindOf(e) === 'InvalidArgument');
    await assert.rejects(t.svc.setupContainer(ctx, { ...req('nn', 'none'), moreNetworks: [{ network: 'multi1' }] }), (e) => kindOf(e) === 'InvalidArgument');
    for (const c of [hub, peer]) await t.svc.teardownContainer(ctx, c.containerId);
    await assertClean([n1.Id, n2.Id]);
    assert.deepEqual((await t.svc.pruneNetworks(ctx)).sort(), ['multi1', 'multi2']);
  });

  it('sets up and tears down containers in parallel with distinct addresses and ports', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'par1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const reqs = Array.from({ length: 6 }, (_, i) => req(`p${i}`, 'par1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] }));
    const results = await Promise.all(reqs.map((r) => t.svc.setupContainer(ctx, r)));
    assert.equal(new Set(results.map((r) => r.interfaces[0].ip)).size, 6);
    assert.equal(new Set(results.map((r) => r.ports[0].hostPort)).size, 6);
    const hosts = await readFile(results[0].hostsPath, 'utf8');
    for (let i = 1; i < 6; i++) assert.ok(hosts.includes(`\tp${i} `), `p0 sees p${i}`);
    await assert.rejects(t.svc.setupContainer(ctx, reqs[0]), (e) => kindOf(e) === 'AlreadyExists');
    await Promise.all(reqs.map((r) => t.svc.teardownContainer(ctx, r.containerId)));
    await assertClean([n.Id]);
    await t.svc.removeNetwork(ctx, 'par1');
  });

  it('in two steps: netns and files exist at once, the address and NAT follow in place', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'steps1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const c = req('stepper', 'steps1', {
      ports: [
        { hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' },
        { hostPort: 0, containerPort: 80, protocol: 'tcp' },
      ],
    });
    const p = await t.svc.beginSetup(ctx, c);
    assert.ok(isMounted(p.netnsPath!), 'the netns is there for the runtime');
    const inode = (await stat(p.hostsPath)).ino;
    assert.ok(!(await readFile(p.hostsPath, 'utf8')).includes('stepper'), 'no address in the provisional hosts file');
    await stat(p.resolvConfPath);
    assert.equal(await readFile(p.hostnamePath, 'utf8'), `${p.hostname}\n`);
    const r = await p.done;
    assert.equal(r.netnsPath, p.netnsPath);
    assert.equal((await stat(p.hostsPath)).ino, inode, 'rewritten in place, so a bind mount made in between follows');
    assert.match(await readFile(p.hostsPath, 'utf8'), new RegExp(`^${r.interfaces[0].ip.replace(/\./g, '\\.')}\t.*stepper`, 'm'));
    const srv = await serveIn(r.netnsPath!, 80, 'steps');
    try {
      assert.equal(await tcpRead('127.0.0.1', r.ports[0].hostPort), 'hello from steps');
      assert.equal(await tcpRead('127.0.0.1', r.ports[1].hostPort), 'hello from steps');
      assert.equal(await tcpRead(n.IPAM.Config[0].Gateway, r.ports[1].hostPort), 'hello from steps', 'on the host\'s address on the bridge too');
      assert.match((await sh('iptables-save', ['-t', 'nat'])).stdout, /BERTH-DN-/, 'TCP ports are berth\'s own rules, not portmap\'s');
    } finally {
      await srv.stop();
    }
    await t.svc.teardownContainer(ctx, c.containerId);
    await assertClean([n.Id]);
    await t.svc.removeNetwork(ctx, 'steps1');
  });

  it('none, host and container: modes', async () => {
    const none = req('nonet', 'none');
    const rn = await t.svc.setupContainer(ctx, none);
    assert.ok(isMounted(rn.netnsPath!));
    const links = JSON.parse((await sh('nsenter', [`--net=${rn.netnsPath}`, 'ip', '-j', 'link'])).stdout) as Array<{ ifname: string; operstate: string; flags: string[] }>;
    assert.deepEqual(links.map((l) => l.ifname), ['lo']);
    assert.ok(links[0].flags.includes('UP'));
    const shared = req('joiner', `container:nonet`);
    const rs = await t.svc.setupContainer(ctx, shared);
    assert.equal(rs.netnsPath, rn.netnsPath);
    assert.equal(rs.hostsPath, rn.hostsPath);
    await assert.rejects(t.svc.setupContainer(ctx, req('x', 'container:nosuch')), (e) => kindOf(e) === 'NotFound');
    const host = req('hostnet', 'host', { extraHosts: ['extra.test:10.0.0.9'] });
    const rh = await t.svc.setupContainer(ctx, host);
    assert.equal(rh.netnsPath, undefined);
    assert.match(await readFile(rh.hostsPath, 'utf8'), /10\.0\.0\.9\textra\.test/);
    for (const c of [shared, none, host]) await t.svc.teardownContainer(ctx, c.containerId);
    await assertClean([]);
  });

  it('bad input gives clear errors and leaves nothing half-wired', async () => {
    const sub = randomSubnet();
    const n = await t.svc.createNetwork(ctx, { name: 'bad1', subnet: sub });
    t.bridges.add(bridgeOf(n));
    await assert.rejects(t.svc.createNetwork(ctx, { name: 'bad2', subnet: sub.replace('/24', '/25') }), (e) => kindOf(e) === 'Conflict' && /overlaps network bad1/.test((e as Error).message));
    await assert.rejects(t.svc.createNetwork(ctx, { name: 'bad1', subnet: randomSubnet() }), (e) => kindOf(e) === 'AlreadyExists');
    await assert.rejects(t.svc.createNetwork(ctx, { name: 'bad3', subnet: '10.0.0.1/24' }), (e) => kindOf(e) === 'InvalidArgument');
    await assert.rejects(t.svc.createNetwork(ctx, { name: 'bad4', subnet: randomSubnet(), gateway: '192.0.2.1' }), (e) => kindOf(e) === 'InvalidArgument');
    await assert.rejects(t.svc.removeNetwork(ctx, 'bridge'), (e) => kindOf(e) === 'PermissionDenied');
    await assert.rejects(t.svc.createNetwork(ctx, { name: 'lo-net', subnet: randomSubnet(), options: { 'com.docker.network.bridge.name': 'lo' } }), (e) => kindOf(e) === 'Conflict' && /not a bridge/.test((e as Error).message));
    await assert.rejects(t.svc.setupContainer(ctx, req('u', 'nosuchnet')), (e) => kindOf(e) === 'NotFound' && /network nosuchnet not found/.test((e as Error).message));
    await assert.rejects(t.svc.setupContainer(ctx, req('al', 'bridge', { aliases: ['x'] })), (e) => kindOf(e) === 'InvalidArgument');
    await assert.rejects(t.svc.setupContainer(ctx, req('ip', 'bad1', { ipAddress: '192.0.2.7' })), (e) => kindOf(e) === 'InvalidArgument');
    await assertClean([n.Id]);

    // A plugin directory without the firewall plugin: the bridge plugin has already run when the
    // firewall is found missing, so the rollback must undo it.
    const partial = path.join(t.dir, 'partial-plugins');
    await mkdir(partial, { recursive: true });
    for (const p of ['bridge', 'host-local', 'loopback']) await symlink(`/usr/lib/cni/${p}`, path.join(partial, p));
    const broken = await t.reopen({ pluginDirs: [partial], firewall: 'true' });
    const c = req('half', 'bad1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    await assert.rejects(broken.setupContainer(ctx, c), (e) => kindOf(e) === 'FailedPrecondition' && /plugin "firewall" not found/.test((e as Error).message));
    // A plugin that fails with a CNI error document: its message reaches the caller.
    await writeFile(path.join(partial, 'firewall'), `#!/bin/sh\ncat >/dev/null\nprintf '{"code":7,"msg":"firewall is broken on purpose"}'\nexit 1\n`);
    await chmod(path.join(partial, 'firewall'), 0o755);
    await assert.rejects(broken.setupContainer(ctx, c), /firewall is broken on purpose/);
    // In two steps the failure comes with `done`, after the rollback.
    const begun = await broken.beginSetup(ctx, c);
    await assert.rejects(begun.done, /firewall is broken on purpose/);
    assert.equal(isMounted(begun.netnsPath!), false);
    await t.reopen();
    await assertClean([n.Id]);
    await t.svc.removeNetwork(ctx, 'bad1');
    await rm(partial, { recursive: true });
  });

  it('a host bridge named for a network is never deleted, and an explicit subnet may not overlap the host\'s networks', async () => {
    const hostBr = `bh${randomBytes(3).toString('hex')}`;
    t.bridges.add(hostBr);
    assert.equal((await sh('ip', ['link', 'add', hostBr, 'type', 'bridge'])).code, 0);
    const linkOf = async () => (await sh('ip', ['-4', '-o', 'addr', 'show', 'dev', hostBr])).stdout;
    const sub = randomSubnet();
    const bridgeOpt = { 'com.docker.network.bridge.name': hostBr };
    const localnet = `/proc/sys/net/ipv4/conf/${hostBr}/route_localnet`;
    assert.equal((await readFile(localnet, 'utf8')).trim(), '0');
    const n = await t.svc.createNetwork(ctx, { name: 'hostbr', subnet: sub, options: bridgeOpt });
    // A port published on loopback has the bridge route 127.0.0.0/8.
    const c = req('onhost', 'hostbr', { ports: [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const r = await t.svc.setupContainer(ctx, c);
    assert.ok(r.interfaces[0].ip.startsWith(sub.replace(/0\/24$/, '')));
    assert.match(await linkOf(), new RegExp(`inet ${sub.replace(/0\/24$/, '1')}/24`), 'the plugin gave the bridge its gateway');
    assert.equal((await readFile(localnet, 'utf8')).trim(), '1');
    await t.svc.teardownContainer(ctx, c.containerId);
    await t.svc.removeNetwork(ctx, 'hostbr');
    assert.equal((await sh('ip', ['link', 'show', 'dev', hostBr])).code, 0, 'the host bridge is still there');
    assert.equal(await linkOf(), '', 'the gateway address berth gave it is gone');
    assert.equal((await readFile(localnet, 'utf8')).trim(), '0', 'route_localnet is as the host had it');
    await assertClean([n.Id]);

    // A host bridge with its own address on the subnet: the address is the bridge's, so the subnet is
    // allowed on that bridge (and only there), and both stay after the network goes.
    const own = randomSubnet();
    const ownGw = own.replace(/0\/24$/, '1');
    assert.equal((await sh('ip', ['addr', 'add', `${ownGw}/24`, 'dev', hostBr])).code, 0);
    await assert.rejects(t.svc.createNetwork(ctx, { name: 'elsewhere', subnet: own }), (e) => kindOf(e) === 'Conflict' && new RegExp(`requested network ${own} overlaps with existing network: the host's ${own} on ${hostBr}`).test((e as Error).message));
    await t.svc.createNetwork(ctx, { name: 'hostbr2', subnet: own, options: bridgeOpt });
    await t.svc.removeNetwork(ctx, 'hostbr2');
    assert.equal((await sh('ip', ['link', 'show', 'dev', hostBr])).code, 0);
    assert.match(await linkOf(), new RegExp(`inet ${ownGw}/24`));

    // The host's loopback and uplink subnets, and the subnet of any route, are refused.
    const uplink = JSON.parse((await sh('ip', ['-4', '-j', 'route', 'show', 'default'])).stdout || '[]') as Array<{ dev?: string }>;
    const hostSubnets = ['127.0.0.0/8', '127.0.0.0/24'];
    if (uplink[0]?.dev) {
      const addr = (JSON.parse((await sh('ip', ['-4', '-j', 'route', 'show', 'dev', uplink[0].dev, 'scope', 'link'])).stdout || '[]') as Array<{ dst?: string }>).find((x) => x.dst?.includes('/'));
      if (addr?.dst) hostSubnets.push(addr.dst);
    }
    for (const subnet of hostSubnets) {
      await assert.rejects(t.svc.createNetwork(ctx, { name: 'shadow', subnet }), (e) => kindOf(e) === 'Conflict' && /requested network .* overlaps with existing network: the host's/.test((e as Error).message), subnet);
    }
    assert.equal(t.svc.store.findNetwork('shadow'), undefined);
  });

  it('after a crash, teardown works from the cache and reconcile reclaims what no live container owns', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'crash1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const live = req('live', 'crash1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const dead = req('dead', 'crash1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const lost = req('lost', 'crash1', { ports: [{ hostPort: 0, containerPort: 81, protocol: 'tcp' }] });
    const rl = await t.svc.setupContainer(ctx, live);
    await t.svc.setupContainer(ctx, dead);
    await t.svc.setupContainer(ctx, lost);
    // "lost" loses its records and its CNI cache (as if the daemon died mid-way): only the sweeps can find its rules and address.
    t.svc.store.deleteEndpoint(lost.containerId);
    await rm(path.join(t.dir, 'data/cni/results', `${cniNameOf(n.Id)}-${lost.containerId}-eth0`));
    assert.ok((await sh('iptables-save', [])).stdout.includes(lost.containerId));

    const svc = await t.reopen();
    const report = await svc.reconcile(ctx, [live.containerId]);
    assert.equal(report.endpoints, 1);
    assert.ok(report.netns >= 1, 'the lost netns file is removed');
    assert.ok(report.allocations >= 1, 'the lost address is freed');
    assert.ok(report.iptablesRules >= 1, 'the lost rules are removed');
    const save = (await sh('iptables-save', [])).stdout;
    assert.ok(!save.includes(dead.containerId) && !save.includes(lost.containerId));
    assert.ok(save.includes(live.containerId), 'the live container keeps its rules');
    assert.ok(await pingFrom(rl.netnsPath!, n.IPAM.Config[0].Gateway), 'the live container still works');
    assert.deepEqual(await readdir(path.join(t.dir, 'netns')), [live.containerId]);

    await svc.teardownContainer(ctx, live.containerId);
    await assertClean([n.Id]);
    await svc.removeNetwork(ctx, 'crash1');
  });

  it('rules a teardown left behind go at berthd\'s stop sweep and with their network, a live container\'s never', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'stale1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const live = req('live', 'stale1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const gone = req('gone', 'stale1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    await t.svc.setupContainer(ctx, live);
    await t.svc.setupContainer(ctx, gone);
    // "gone" loses its records with its rules still in place, as a removal whose NAT step failed or was cut short.
    t.svc.store.deleteEndpoint(gone.containerId);
    t.svc.store.deleteAttachment(gone.containerId, n.Id);
    assert.ok((await sh('iptables-save', [])).stdout.includes(gone.containerId));

    assert.ok((await t.svc.sweepRules(ctx)) >= 1, 'the stop sweep removes rules');
    let save = (await sh('iptables-save', [])).stdout;
    assert.ok(!save.includes(gone.containerId), 'no rule of the container without network state');
    assert.ok(save.includes(live.containerId), 'the live container keeps its rules');

    // A rule still naming the network when it is removed (its container is gone) goes with it.
    await t.svc.teardownContainer(ctx, live.containerId);
    const tag = `-m comment --comment "name: \\"${cniNameOf(n.Id)}\\" id: \\"${gone.containerId}\\""`;
    const planted = await sh('iptables-restore', ['--noflush', '-w'], { input: `*nat\n-A POSTROUTING -s 192.0.2.1/32 ${tag} -j MASQUERADE\nCOMMIT\n` });
    assert.equal(planted.code, 0, planted.stderr);
    assert.ok((await sh('iptables-save', [])).stdout.includes(gone.containerId));
    await t.svc.removeNetwork(ctx, 'stale1');
    save = (await sh('iptables-save', [])).stdout;
    assert.ok(!save.includes(cniNameOf(n.Id)), 'no rule names the removed network');
    // The rest of "gone" (netns, address, files) is what a start's reconcile reclaims.
    await t.svc.reconcile(ctx, []);
    await assertClean([n.Id]);
  });

  it('with the firewall plugin, FORWARD accept rules come and go with the container', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'fw1', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n));
    const svc = await t.reopen({ firewall: 'true' });
    const c = req('guarded', 'fw1');
    const r = await svc.setupContainer(ctx, c);
    const ip = r.interfaces[0].ip;
    assert.match((await sh('iptables', ['-S', 'CNI-FORWARD'])).stdout, new RegExp(`-s ${ip.replace(/\./g, '\\.')}/32 -j ACCEPT`));
    // a daemon restarted without the firewall setting still removes the rules: DEL uses the cached config
    const plain = await t.reopen({ firewall: 'false' });
    await plain.teardownContainer(ctx, c.containerId);
    assert.ok(!(await sh('iptables', ['-S', 'CNI-FORWARD'])).stdout.includes(`${ip}/32`));
    await assertClean([n.Id]);
    await t.reopen();
    await t.svc.removeNetwork(ctx, 'fw1');
  });

  it('berth\'s own bridge list is torn down without its plugins, at once and idempotently; any other list by the plugins\' DEL', async () => {
    // The bridge plugin, wrapped to log its verbs: the real one still does the work.
    const wrapDir = path.join(t.dir, 'wrapped-plugins');
    const log = path.join(t.dir, 'bridge-verbs.log');
    await mkdir(wrapDir, { recursive: true });
    const real = t.cfg.pluginDirs.map((d) => path.join(d, 'bridge'));
    await writeFile(
      path.join(wrapDir, 'bridge'),
      `#!/bin/sh\necho "$CNI_COMMAND $CNI_IFNAME" >> ${log}\nfor p in ${real.join(' ')}; do [ -x "$p" ] && exec "$p"; done\nexit 1\n`,
    );
    await chmod(path.join(wrapDir, 'bridge'), 0o755);
    const verbs = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    const wrapped = { pluginDirs: [wrapDir, ...t.cfg.pluginDirs] };
    let svc = await t.reopen(wrapped);
    const n1 = await svc.createNetwork(ctx, { name: 'own1', subnet: randomSubnet() });
    const n2 = await svc.createNetwork(ctx, { name: 'own2', subnet: randomSubnet() });
    t.bridges.add(bridgeOf(n1)).add(bridgeOf(n2));
    const veths = async (n: typeof n1) => (JSON.parse((await sh('ip', ['-j', 'link', 'show', 'master', bridgeOf(n)])).stdout || '[]') as unknown[]).length;
    const allocations = async (n: typeof n1) => (await readdir(path.join(t.dir, 'data/ipam', cniNameOf(n.Id))).catch(() => [])).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));

    const c = req('own', 'own1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const r = await svc.setupContainer(ctx, c);
    await svc.connect(ctx, { container: 'own', network: 'own2' });
    assert.deepEqual(await verbs(), ['ADD eth0', 'ADD eth1']);
    assert.equal(await veths(n2), 1);
    // disconnect: eth1 and its host end are gone when it returns, its address free, eth0 untouched
    await svc.disconnect(ctx, { container: 'own', network: 'own2' });
    assert.equal(await veths(n2), 0, 'the host end left the bridge at once');
    assert.deepEqual(await allocations(n2), []);
    assert.notEqual((await sh('nsenter', [`--net=${r.netnsPath}`, 'ip', 'link', 'show', 'eth1'])).code, 0, 'eth1 deleted in the namespace');
    assert.ok(await pingFrom(r.netnsPath!, n1.IPAM.Config[0].Gateway), 'eth0 still works');
    // teardown: nothing left, checked at once (no wait for the kernel to free a namespace)
    await svc.teardownContainer(ctx, c.containerId);
    assert.equal(await veths(n1), 0, 'the host end left the bridge at once');
    assert.deepEqual(await verbs(), ['ADD eth0', 'ADD eth1'], 'no bridge plugin ran for the teardown');
    await assertClean([n1.Id, n2.Id]);

    // A teardown cut short after the interface went (a crash): the next start's reconcile finishes it.
    const cut = req('cut', 'own1');
    const rc = await svc.setupContainer(ctx, cut);
    assert.equal((await sh('nsenter', [`--net=${rc.netnsPath}`, 'ip', 'link', 'del', 'eth0'])).code, 0);
    assert.equal((await allocations(n1)).length, 1);
    svc = await t.reopen(wrapped);
    assert.equal((await svc.reconcile(ctx, [])).endpoints, 1);
    await assertClean([n1.Id]);
    // the same, with the address already released too: a teardown finds nothing to do and still succeeds
    const twice = req('twice', 'own1');
    const rt = await svc.setupContainer(ctx, twice);
    await sh('nsenter', [`--net=${rt.netnsPath}`, 'ip', 'link', 'del', 'eth0']);
    for (const f of await allocations(n1)) await rm(path.join(t.dir, 'data/ipam', cniNameOf(n1.Id), f));
    await svc.teardownContainer(ctx, twice.containerId);
    await assertClean([n1.Id]);
    assert.deepEqual((await verbs()).filter((v) => v.startsWith('DEL')), [], 'still no plugin DEL');

    // Another list (the firewall plugin chained) gets the plugins' DEL, as CNI has it.
    svc = await t.reopen({ ...wrapped, firewall: 'true' });
    const fw = req('fw', 'own1');
    await svc.setupContainer(ctx, fw);
    await svc.teardownContainer(ctx, fw.containerId);
    assert.deepEqual((await verbs()).slice(-2), ['ADD eth0', 'DEL eth0']);
    await assertClean([n1.Id]);
    svc = await t.reopen();
    for (const name of ['own1', 'own2']) await svc.removeNetwork(ctx, name);
  });

  it('after a reboot (netns and bridge gone, records and allocations kept) reconcile frees everything', async () => {
    const n = await t.svc.createNetwork(ctx, { name: 'reboot1', subnet: randomSubnet() });
    const bridge = bridgeOf(n);
    t.bridges.add(bridge);
    const c = req('survivor', 'reboot1', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const r = await t.svc.setupContainer(ctx, c);
    // what a reboot takes away: the netns mount (on tmpfs /run) and the bridge with its veths
    await sh('umount', [r.netnsPath!]);
    await rm(r.netnsPath!);
    await sh('ip', ['link', 'del', bridge]);
    const svc = await t.reopen();
    const report = await svc.reconcile(ctx, []);
    assert.equal(report.endpoints, 1);
    await assertClean([n.Id]);
    await svc.removeNetwork(ctx, 'reboot1');
  });
});
