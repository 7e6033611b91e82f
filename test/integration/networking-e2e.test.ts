import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { busyboxImage, type LayerFile } from '../helpers/image-builder.ts';
import { randomSubnet } from '../helpers/network.ts';

/**
 * Networking through the real CLI and berthd: published ports answered on
 * 127.0.0.1, user networks with name resolution, connect/disconnect, the
 * special network modes and /etc files, and nothing left behind after
 * removal or a daemon crash. Traffic goes only to loopback and to the
 * bridges and namespaces this test creates.
 */
const HTTPD: LayerFile = { path: 'bin/httpd', type: 'symlink', target: 'busybox' };

describe('networking end to end', { timeout: 900_000 }, () => {
  let e: Engine;
  const ids = new Set<string>();
  const networks = new Map<string, { subnet: string; bridge: string; id: string }>();

  before(async () => {
    e = await startEngine({
      imageSpec: busyboxImage([{ files: [HTTPD, { path: 'www', type: 'dir' }, { path: 'www/index.html', content: 'hello from httpd\n' }] }], { Cmd: ['sh'] }),
    });
  });
  after(async () => {
    if (!e) return;
    await e.stop();
    // A user network's bridge is gone with `network rm`; delete any a failure left.
    for (const n of networks.values()) await run('ip', ['link', 'del', n.bridge]);
  });

  const cli = (...args: string[]) => e.d.cli(args);
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `berth ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const runD = async (...args: string[]) => {
    const id = (await ok('run', '-d', ...args)).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    ids.add(id);
    return id;
  };
  const exec = (name: string, script: string) => cli('exec', name, 'sh', '-c', script);

  it('publishes a port on 127.0.0.1 and shows it with `berth port`', async () => {
    const hostPort = await freePort();
    await runD('--name', 'web', '-p', `127.0.0.1:${hostPort}:80`, e.image, 'httpd', '-f', '-p', '80', '-h', '/www');
    const body = await retry(() => fetchText(`http://127.0.0.1:${hostPort}/index.html`), 'httpd answers on the published port');
    assert.equal(body, 'hello from httpd\n');
    assert.equal((await ok('port', 'web')).trim(), `80/tcp -> 127.0.0.1:${hostPort}`);
    assert.equal((await ok('port', 'web', '80')).trim(), `127.0.0.1:${hostPort}`);

    // The same host port again, on its address and on all addresses: refused, and the loser holds nothing.
    const rulesBefore = iptablesSave();
    const vethsBefore = vethsOn(e.bridge);
    for (const spec of [`127.0.0.1:${hostPort}:80`, `${hostPort}:80`]) {
      const dup = await cli('run', '-d', '--name', 'web2', '-p', spec, e.image, 'httpd', '-f', '-p', '80', '-h', '/www');
      assert.notEqual(dup.code, 0, spec);
      assert.match(dup.stderr, new RegExp(`${hostPort}.*(already allocated|in use)|(already allocated|in use).*${hostPort}`, 'i'));
      const web2 = (await cli('inspect', '-f', '{{.Id}}', 'web2')).stdout.trim();
      if (web2) {
        ids.add(web2);
        assert.doesNotMatch(iptablesSave(), new RegExp(web2.slice(0, 12)), 'no rule of the refused container');
        assert.equal(existsSync(path.join(e.d.state, 'netns', web2)), false, 'no netns of the refused container');
        await ok('rm', '-f', 'web2');
      }
    }
    assert.equal(vethsOn(e.bridge), vethsBefore, 'no veth of the refused container');
    // Other engines on this host change iptables too: compare only the rules of this host port.
    const ofPort = (rules: string) => rules.split('\n').filter((l) => l.includes(`${hostPort}`)).sort();
    assert.deepEqual(ofPort(iptablesSave()), ofPort(rulesBefore), 'no rule added for the port by the refused run');
    assert.equal(await fetchText(`http://127.0.0.1:${hostPort}/index.html`), 'hello from httpd\n', 'the first container still answers');
  });

  it('publishes the image\'s exposed ports with -P', async () => {
    const ref = await e.push('exposing', busyboxImage([{ files: [HTTPD, { path: 'www', type: 'dir' }, { path: 'www/index.html', content: 'exposed\n' }] }], { Cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], ExposedPorts: { '8080/tcp': {} } }));
    await ok('pull', ref);
    await runD('--name', 'exposed', '-P', ref);
    const line = (await ok('port', 'exposed', '8080/tcp')).trim().split('\n')[0];
    const m = /:(\d+)$/.exec(line);
    assert.ok(m, `a host port for 8080/tcp: ${line}`);
    const body = await retry(() => fetchText(`http://127.0.0.1:${m[1]}/index.html`), 'the -P port answers');
    assert.equal(body, 'exposed\n');
  });

  it('resolves containers by name and alias on a user network, and follows them coming and going', async () => {
    const subnet = randomSubnet();
    const created = await cli('network', 'create', '--subnet', subnet, 'n1');
    assert.equal(created.code, 0, created.stderr);
    const info = JSON.parse(await ok('network', 'inspect', 'n1'))[0];
    networks.set('n1', { subnet, bridge: info.Options?.['com.docker.network.bridge.name'] ?? `br-${info.Id.slice(0, 12)}`, id: info.Id });
    assert.equal(info.IPAM.Config[0].Subnet, subnet);

    await runD('--name', 'c1', '--network', 'n1', e.image, 'sleep', '1000');
    await runD('--name', 'c2', '--network', 'n1', '--network-alias', 'db', e.image, 'httpd', '-f', '-p', '80', '-h', '/www');
    assert.equal((await exec('c1', 'ping -c1 -W2 c2')).code, 0, 'c1 reaches c2 by name');
    assert.equal((await exec('c2', 'ping -c1 -W2 c1')).code, 0, 'c2 reaches c1 by name');
    // busybox's nc, as this busybox's wget crashes: an HTTP/1.0 GET by alias.
    const viaAlias = await retry(async () => {
      const r = await exec('c1', 'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 2 db 80');
      if (r.code !== 0 || !r.stdout.includes('200 OK')) throw new Error(r.stderr || r.stdout);
      return r.stdout;
    }, 'an HTTP GET by alias');
    assert.match(viaAlias, /\r\n\r\nhello from httpd\n$/);

    await runD('--name', 'c3', '--network', 'n1', e.image, 'sleep', '1000');
    assert.match((await exec('c1', 'cat /etc/hosts')).stdout, /\sc3(\s|$)/m, 'c1 sees c3 arrive');
    assert.equal((await exec('c1', 'ping -c1 -W2 c3')).code, 0, 'c1 reaches c3');
    await ok('rm', '-f', 'c3');
    assert.doesNotMatch((await exec('c1', 'cat /etc/hosts')).stdout, /\sc3(\s|$)/m, 'c1 sees c3 go');

    await ok('restart', '-t', '1', 'c2');
    assert.match((await exec('c1', 'cat /etc/hosts')).stdout, /\sdb(\s|$)/m, 'c1 sees c2 again after its restart');
    assert.equal((await exec('c1', 'ping -c1 -W2 db')).code, 0, 'c1 reaches c2 by alias after its restart');

    const overlap = await cli('network', 'create', '--subnet', subnet, 'n1-overlap');
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /overlaps/);
    const dupName = await cli('network', 'create', 'n1');
    assert.notEqual(dupName.code, 0);
    assert.match(dupName.stderr, /n1.*already exists/);
    const unknownNet = await cli('run', '--rm', '--network', 'no-such-net', e.image, 'true');
    assert.notEqual(unknownNet.code, 0);
    assert.match(unknownNet.stderr, /network no-such-net not found/);

    const inUse = await cli('network', 'rm', 'n1');
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /in use|active endpoints/i);
  });

  it('cuts a container off with `network disconnect` and restores it with `connect`', async () => {
    await ok('network', 'disconnect', 'n1', 'c1');
    assert.notEqual((await exec('c1', 'ping -c1 -W1 c2')).code, 0, 'c1 cut off');
    assert.doesNotMatch((await exec('c2', 'cat /etc/hosts')).stdout, /\sc1(\s|$)/m, 'c2 no longer lists c1');
    const cutInspect = JSON.parse(await ok('inspect', 'c1'))[0];
    assert.deepEqual(Object.keys(cutInspect.NetworkSettings.Networks), [], 'inspect shows c1 on no network');
    await ok('network', 'connect', 'n1', 'c1');
    const backInspect = JSON.parse(await ok('inspect', 'c1'))[0];
    assert.match(backInspect.NetworkSettings.Networks.n1?.IPAddress ?? '', /^\d+\.\d+\.\d+\.\d+$/, 'inspect shows c1 back on n1');
    assert.equal((await exec('c1', 'ping -c1 -W2 c2')).code, 0, 'c1 back on n1');
    assert.equal((await exec('c2', 'ping -c1 -W2 c1')).code, 0, 'c2 reaches c1 again');
    const noContainer = await cli('network', 'disconnect', 'n1', 'no-such-container');
    assert.notEqual(noContainer.code, 0);
    assert.match(noContainer.stderr, /No such container: no-such-container/);
    // A stopped container's networks change for its next start.
    await ok('create', '--name', 'idle', '--network', 'n1', e.image, 'sleep', '1000');
    await ok('network', 'disconnect', 'n1', 'idle');
    await ok('start', 'idle');
    assert.deepEqual((await exec('idle', 'ls /sys/class/net')).stdout.trim().split(/\s+/), ['lo'], 'idle started on no network');
    await ok('network', 'connect', '--alias', 'sleeper', 'n1', 'idle');
    assert.equal((await exec('c1', 'ping -c1 -W2 sleeper')).code, 0, 'c1 reaches idle by its connect alias');
    await ok('rm', '-f', 'idle');

    // A connect holds across a restart, as in docker.
    const subnet2 = randomSubnet();
    await ok('network', 'create', '--subnet', subnet2, 'n2');
    const n2 = JSON.parse(await ok('network', 'inspect', 'n2'))[0];
    networks.set('n2', { subnet: subnet2, bridge: `br-${n2.Id.slice(0, 12)}`, id: n2.Id });
    await ok('network', 'connect', 'n2', 'c1');
    await ok('restart', '-t', '1', 'c1');
    const nets = Object.keys(JSON.parse(await ok('inspect', 'c1'))[0].NetworkSettings.Networks).sort();
    assert.deepEqual(nets, ['n1', 'n2'], 'c1 is on both networks after its restart');
    assert.equal((await exec('c1', 'ping -c1 -W2 c2')).code, 0, 'c1 reaches c2 on n1 after its restart');
    await ok('network', 'disconnect', 'n2', 'c1');
    await ok('network', 'rm', 'n2');
    assert.equal(linkExists(networks.get('n2')!.bridge), false, "n2's bridge is deleted by network rm");
    const unknown = await cli('network', 'connect', 'no-such-net', 'c1');
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no-such-net.*not found|not found.*no-such-net/i);
  });

  it('runs with --network none, host and container:NAME', async () => {
    const none = await cli('run', '--rm', '--network', 'none', e.image, 'sh', '-c', 'ls /sys/class/net');
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(none.stdout.trim().split(/\s+/), ['lo']);
    const host = await cli('run', '--rm', '--network', 'host', e.image, 'sh', '-c', 'ls /sys/class/net');
    assert.equal(host.code, 0, host.stderr);
    assert.ok(host.stdout.split(/\s+/).includes(e.bridge), `the host's bridge ${e.bridge} is visible: ${host.stdout}`);
    const c1Ip = (await exec('c1', 'ip -4 -o addr show')).stdout;
    const shared = await cli('run', '--rm', '--network', 'container:c1', e.image, 'ip', '-4', '-o', 'addr', 'show');
    assert.equal(shared.code, 0, shared.stderr);
    assert.equal(addrs(shared.stdout), addrs(c1Ip), 'same interfaces as c1');
    const noOther = await cli('run', '--rm', '--network', 'container:no-such-container', e.image, 'true');
    assert.equal(noOther.code, 125);
    assert.match(noOther.stderr, /No such container: no-such-container/);
    await ok('create', '--name', 'idle', e.image, 'true');
    const idleOther = await cli('run', '--rm', '--network', 'container:idle', e.image, 'true');
    assert.notEqual(idleOther.code, 0);
    assert.match(idleOther.stderr, /container idle: it is not running/);
    await ok('rm', 'idle');
  });

  it('writes --dns, --dns-search, --add-host and --hostname into /etc', async () => {
    const r = await cli('run', '--rm', '--network', 'n1', '--dns', '192.0.2.10', '--dns-search', 'example.test', '--add-host', 'gw.test:192.0.2.20', '--hostname', 'myhost', e.image,
      'sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; hostname');
    assert.equal(r.code, 0, r.stderr);
    const [resolv, hosts, hostname] = r.stdout.split('---\n');
    assert.match(resolv, /^nameserver 192\.0\.2\.10$/m);
    assert.doesNotMatch(resolv, /^nameserver (?!192\.0\.2\.10$)/m, 'only the given server');
    assert.match(resolv, /^search example\.test$/m);
    assert.match(hosts, /^192\.0\.2\.20\s+gw\.test$/m);
    assert.match(hosts, /\smyhost(\s|$)/m);
    assert.deepEqual(hostname.trim().split('\n'), ['myhost', 'myhost']);
  });

  it('keeps networked containers working across a kill -9 of berthd and cleans up removed ones', async () => {
    const hostPort = Number((await ok('port', 'web', '80')).trim().split(':').pop());
    const doomed = await runD('--name', 'doomed', '--network', 'n1', e.image, 'sleep', '1000');
    await e.d.kill();
    // Removed while berthd was down: its task goes, its network state is for reconcile.
    await run('runc', ['--root', path.join(e.d.state, 'runtime', 'runc', 'default'), 'delete', '-f', doomed]);
    await e.d.restart();
    assert.equal(await retry(() => fetchText(`http://127.0.0.1:${hostPort}/index.html`), 'published port after restart'), 'hello from httpd\n');
    assert.equal((await exec('c1', 'ping -c1 -W2 c2')).code, 0, 'c1 still reaches c2');
    assert.equal(existsSync(path.join(e.d.state, 'netns', doomed)), false, 'the dead container\'s netns was reclaimed');
    assert.doesNotMatch(iptablesSave(), new RegExp(doomed.slice(0, 12)));
    assert.doesNotMatch((await exec('c1', 'cat /etc/hosts')).stdout, /\sdoomed(\s|$)/m);
    const h = await cli('port', 'web');
    assert.equal(h.code, 0, h.stderr);
  });

  it('leaves nothing behind once everything is removed', async () => {
    const all = (await ok('ps', '-aq', '--no-trunc')).split('\n').filter(Boolean);
    for (const id of all) ids.add(id);
    if (all.length) await ok('rm', '-f', ...all);
    await ok('network', 'rm', 'n1');
    const n1 = networks.get('n1')!;
    assert.equal(linkExists(n1.bridge), false, `n1's bridge ${n1.bridge} is deleted by network rm`);

    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    const rules = iptablesSave();
    for (const id of ids) {
      assert.doesNotMatch(rules, new RegExp(id.slice(0, 12)), `no iptables rule of ${id.slice(0, 12)}`);
    }
    for (const [name, n] of networks) {
      assert.doesNotMatch(rules, new RegExp(n.subnet.replace(/\./g, '\\.')), `no rule of ${name}`);
      assert.doesNotMatch(rules, new RegExp(n.id.slice(0, 12)), `no rule of ${name}`);
      assert.equal(linkExists(n.bridge), false, `${name}'s bridge is gone`);
    }
    // Every veth of ours hangs off our bridges; none remain attached.
    assert.doesNotMatch(links, new RegExp(`master ${e.bridge}\\b`), `no veth on ${e.bridge}`);
    assert.deepEqual(readdirSync(path.join(e.d.state, 'netns')).filter((f) => !f.startsWith('.')), [], 'no netns files');
    const allocations = hostLocalAllocations(e.d.root);
    assert.deepEqual(allocations, [], 'no host-local allocation');
  });

  it('deletes the default bridge when the engine stops, and berthd\'s stop sweeps a rule a teardown left', async () => {
    const bridge = e.bridge;
    const info = JSON.parse(await ok('network', 'inspect', 'bridge'))[0];
    const subnet = info.IPAM.Config[0].Subnet as string;
    // A masquerade rule of a container berthd no longer knows, as a teardown cut short leaves it.
    const gone = 'f'.repeat(64);
    const ip = subnet.replace(/0\/24$/, '250');
    const planted = `-A POSTROUTING -s ${ip}/32 ! -d ${subnet} -m addrtype ! --dst-type MULTICAST -m comment --comment "name: \\"berth-${info.Id.slice(0, 12)}\\" id: \\"${gone}\\"" -j MASQUERADE`;
    execFileSync('iptables-restore', ['--noflush', '-w'], { input: `*nat\n${planted}\nCOMMIT\n` });
    assert.match(iptablesSave(), new RegExp(gone));
    await e.stop();
    e = undefined as unknown as Engine;
    assert.equal(linkExists(bridge), false);
    const rules = iptablesSave();
    assert.doesNotMatch(rules, new RegExp(subnet.replace(/\./g, '\\.')), `no rule of the default network ${subnet}`);
    assert.doesNotMatch(rules, new RegExp(`\\b${bridge}\\b`), `no rule of ${bridge}`);
  });
});

function iptablesSave(): string {
  return execFileSync('iptables-save', { encoding: 'utf8' })
    .split('\n')
    .filter((l) => !l.startsWith('#') && !/^:.*\[\d+:\d+\]$/.test(l))
    .join('\n');
}

function vethsOn(bridge: string): number {
  return execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
}

function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** host-local's files: one per allocated address, named by the address. */
function hostLocalAllocations(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (/^\d+\.\d+\.\d+\.\d+$/.test(ent.name)) out.push(p);
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

function addrs(ipOutput: string): string {
  return ipOutput
    .split('\n')
    .map((l) => /inet (\S+)/.exec(l)?.[1])
    .filter(Boolean)
    .sort()
    .join(',');
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((r) => {
    try {
      execFileSync(file, args, { stdio: 'ignore' });
    } catch {
      // best effort
    }
    r();
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function fetchText(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

async function retry<T>(f: () => Promise<T>, what: string, limitMs = 20_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await f();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`timed out waiting for ${what}: ${String(last)}`);
}
