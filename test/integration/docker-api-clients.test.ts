import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runProcess, type CliResult } from '../helpers/daemon.ts';
import { dockerSkip, startDockerEngine, type DockerEngine } from '../helpers/docker.ts';
import { bridgeOf, randomBridge, randomSubnet } from '../helpers/network.ts';

/**
 * Docker's own clients, unmodified, against berth's Docker API socket:
 * docker-compose 1.29 and docker-py 5 from Debian (scripts/setup.sh
 * installs them; Debian's python3, not another on PATH, so the module is
 * Debian's), and dockerode and testcontainers from npm (dev dependencies;
 * testcontainers' Ryuk is off, its image is not reachable here).
 */
const compose = '/usr/bin/docker-compose';
const python = '/usr/bin/python3';
const clientsSkip = dockerSkip ?? (existsSync(compose) && existsSync('/usr/lib/python3/dist-packages/docker') ? undefined : 'needs docker-compose and python3-docker (scripts/setup.sh)');

describe('Docker API: docker-compose, docker-py, dockerode and testcontainers', { skip: clientsSkip }, () => {
  let de: DockerEngine;
  let dir: string;
  const bridges: string[] = [];

  before(async () => {
    de = await startDockerEngine();
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-compose-'));
  });
  after(async () => {
    if (de) {
      // What a test that failed half-way left: compose's containers go with stop(), its networks here.
      const nets = (await de.docker(['network', 'ls', '-q', '--filter', 'type=custom'])).stdout.split('\n').filter(Boolean);
      const ids = (await de.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await de.docker(['rm', '-f', ...ids]);
      if (nets.length) await de.docker(['network', 'rm', ...nets]);
      await de.stop();
    }
    for (const b of bridges) await runProcess('ip', ['link', 'del', b]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Retry a command until it succeeds (a service's server comes up after its container starts); the last result. */
  const until = async (run: () => Promise<CliResult>, ok: (r: CliResult) => boolean): Promise<CliResult> => {
    let r = await run();
    for (let i = 0; i < 100 && !ok(r); i++) r = await run();
    return r;
  };

  test('a compose project: two services, a named volume and a user network come up, answer by name, log, exec, and go down leaving nothing', async () => {
    const bridge = randomBridge();
    bridges.push(bridge);
    const subnet = randomSubnet();
    const project = 'berthproj';
    await writeFile(
      path.join(dir, 'docker-compose.yml'),
      `version: "3.8"
services:
  web:
    image: ${de.e.image}
    command: ["sh", "-c", "echo hello from web > /www/index.html && echo web up && exec httpd -f -p 8080 -h /www"]
    volumes: ["data:/www"]
    networks: ["back", "front"]
  client:
    image: ${de.e.image}
    command: ["sh", "-c", "echo client up; exec sleep 600"]
    depends_on: ["web"]
    networks: ["back"]
volumes:
  data: {}
networks:
  front: {}
  back:
    driver_opts:
      com.docker.network.bridge.name: ${bridge}
    ipam:
      config:
        - subnet: ${subnet}
`,
    );
    const env = { ...de.env, COMPOSE_INTERACTIVE_NO_CLI: '1' };
    const dc = (args: string[]) => runProcess(compose, ['-p', project, ...args], { env, cwd: dir, timeoutMs: 120_000 });

    const up = await dc(['up', '-d']);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, new RegExp(`Creating ${project}_web_1 \\.\\.\\. done`));
    assert.match(up.stderr, new RegExp(`Creating ${project}_client_1 \\.\\.\\. done`));
    const front = JSON.parse(await de.ok(['network', 'inspect', `${project}_front`]))[0];
    bridges.push(bridgeOf(front));
    // A network shows only the options it was given: compose finds the project as it left it.
    assert.deepEqual(front.Options, {});
    const again = await dc(['up', '-d']);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /recreate|Creating|Recreating/);
    assert.match(again.stderr, new RegExp(`${project}_web_1 is up-to-date`));
    // A changed service is recreated (compose reads the image's ContainerConfig for its volumes then).
    const file = path.join(dir, 'docker-compose.yml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('echo client up;', 'echo client up again;'));
    const recreated = await dc(['up', '-d', '-t', '1']);
    assert.equal(recreated.code, 0, recreated.stderr);
    assert.match(recreated.stderr, new RegExp(`Recreating ${project}_client_1 \\.\\.\\. done`));

    const ps = await dc(['ps']);
    assert.equal(ps.code, 0, ps.stderr);
    const rows = ps.stdout.split('\n').filter((l) => l.startsWith(project));
    assert.deepEqual(rows.map((l) => l.split(/\s+/)[0]).sort(), [`${project}_client_1`, `${project}_web_1`], ps.stdout);
    for (const row of rows) assert.match(row, /\sUp\s/);

    // The client reaches the web service by its name on the project's network.
    const fetched = await until(() => dc(['exec', '-T', 'client', 'wget', '-qO-', 'http://web:8080/']), (r) => r.code === 0);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(fetched.stdout, 'hello from web\n');
    const failed = await dc(['exec', '-T', 'client', 'sh', '-c', 'echo out; exit 3']);
    assert.equal(failed.code, 3);
    assert.equal(failed.stdout, 'out\n');

    const logs = await until(() => dc(['logs', '--no-color']), (r) => /web up/.test(r.stdout) && /client up/.test(r.stdout));
    assert.match(logs.stdout, /web_1\s+\| web up/);
    assert.match(logs.stdout, /client_1\s+\| client up/);

    const vethsOf = async (b: string) => (await runProcess('ip', ['-o', 'link', 'show', 'master', b])).stdout.split('\n').filter(Boolean).map((l) => l.split(': ')[1].split('@')[0]);
    const veths = [...(await vethsOf(bridge)), ...(await vethsOf(bridgeOf(front)))];
    assert.equal(veths.length, 3, 'one veth per container and network');

    const down = await dc(['down', '-v', '-t', '1']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, new RegExp(`Removing network ${project}_back`));
    assert.match(down.stderr, new RegExp(`Removing network ${project}_front`));
    assert.match(down.stderr, new RegExp(`Removing volume ${project}_data`));
    assert.equal((await de.ok(['ps', '-aq'])).trim(), '');
    assert.doesNotMatch(await de.ok(['network', 'ls']), new RegExp(project));
    assert.equal((await de.ok(['volume', 'ls', '-q'])).trim(), '');
    for (const b of [bridge, bridgeOf(front)]) assert.notEqual((await runProcess('ip', ['link', 'show', b])).code, 0, `bridge ${b} is gone`);
    for (const v of veths) assert.notEqual((await runProcess('ip', ['link', 'show', v])).code, 0, `veth ${v} is gone`);
    const rules = (await runProcess('iptables-save', [])).stdout;
    assert.ok(!rules.includes(subnet) && !rules.includes(bridge), 'no iptables rule names the project network');
  });

  test("docker-py: the containers, images, networks and volumes steps", async () => {
    const script = path.join(dir, 'steps.py');
    await writeFile(script, DOCKER_PY_STEPS);
    const tar = path.join(dir, 'one.tar');
    await writeFile(path.join(dir, 'one.txt'), 'one\n');
    assert.equal((await runProcess('tar', ['-C', dir, '-cf', tar, 'one.txt'])).code, 0);
    const r = await runProcess(python, [script], { env: { ...de.env, IMG: de.e.image, TAR: tar }, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    const got = Object.fromEntries(r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as [string, unknown]));
    assert.equal(got.ping, true);
    assert.equal(got.api, '1.50');
    assert.deepEqual(got.images, [de.e.image]);
    assert.equal(got.tagged, true);
    assert.equal(got.untagged, true);
    assert.equal(got.pulled, true);
    assert.equal(got.run, 'hi\nerr\n');
    assert.deepEqual(got.detached, ['running', 'pyc', { a: 'b' }, true]);
    assert.deepEqual(got.listed, ['pyc']);
    assert.deepEqual(got.exec, [3, 'exec\n']);
    assert.equal(got.logs, 'started\n');
    assert.ok((got.top as string[]).includes('PID'));
    assert.ok((got.stats as string[]).includes('memory_stats'));
    assert.deepEqual(got.wait, { StatusCode: 137, Error: null });
    assert.equal(got.removed, true);
    assert.deepEqual(got.network, ['pynet', { x: 'y' }]);
    assert.deepEqual(got.networkContainers, ['pyn']);
    assert.deepEqual(got.containerNetworks, ['bridge', 'pynet']);
    assert.deepEqual(got.disconnected, []);
    assert.equal(got.networkGone, true);
    assert.deepEqual(got.volume, ['pyvol', { k: 'v' }]);
    assert.deepEqual(got.volumes, ['pyvol']);
    assert.equal(got.volumeGone, true);
    assert.deepEqual(got.archive, [true, 'hostname', true]);
    assert.equal(got.commit, true);
    assert.equal(got.export, true);
    assert.equal(got.diff, true);
    assert.deepEqual(got.load, ['pycommit:v1']);
    assert.deepEqual(got.df, ['BuildCache', 'Containers', 'Images', 'LayersSize', 'Volumes']);
    assert.equal(got.notFound, 'NotFound');
  });

  test('dockerode: containers (create, attach, start, wait, logs, exec, archive, inspect, list), images, networks, volumes, events and stats', async () => {
    const { default: Docker } = await import('dockerode');
    const docker = new Docker({ socketPath: de.sock });
    assert.equal(String(await docker.ping()), 'OK');
    assert.equal((await docker.version()).ApiVersion, '1.50');
    assert.ok((await docker.listImages()).some((i) => i.RepoTags?.includes(de.e.image)));
    assert.equal((await docker.getImage(de.e.image).inspect()).RepoTags[0], de.e.image);

    const events = await docker.getEvents({ filters: { type: ['container'], event: ['start'] } });
    const started = new Promise<{ Actor: { Attributes: { name: string } } }>((resolve) => events.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()))));
    const c = await docker.createContainer({ Image: de.e.image, name: 'dode', Cmd: ['sh', '-c', 'read line; echo "got $line"; echo err >&2; exit 4'], OpenStdin: true, StdinOnce: true, Labels: { via: 'dockerode' } });
    const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const sink = (into: Buffer[]) => new Writable({ write: (chunk: Buffer, _e, done) => (into.push(chunk), done()) });
    c.modem.demuxStream(stream, sink(out), sink(err));
    const waited = c.wait({ condition: 'next-exit' });
    await c.start();
    stream.end('hello\n');
    assert.equal((await waited).StatusCode, 4);
    assert.equal(((await started) as { Actor: { Attributes: { name: string } } }).Actor.Attributes.name, 'dode');
    (events as unknown as { destroy(): void }).destroy();
    for (let i = 0; i < 100 && Buffer.concat(out).length === 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(Buffer.concat(out).toString(), 'got hello\n');
    assert.equal(Buffer.concat(err).toString(), 'err\n');
    const logs = await c.logs({ stdout: true, stderr: true, follow: false });
    assert.match(logs.toString(), /got hello/);
    const ins = await c.inspect();
    assert.equal(ins.State.ExitCode, 4);
    assert.equal(ins.Config.Labels.via, 'dockerode');
    assert.deepEqual((await docker.listContainers({ all: true, filters: { label: ['via=dockerode'] } })).map((x) => x.Names[0]), ['/dode']);
    await c.remove();

    const runner = await docker.createContainer({ Image: de.e.image, name: 'dode2', Cmd: ['sleep', '300'] });
    await runner.start();
    const ex = await runner.exec({ Cmd: ['sh', '-c', 'echo from-exec; exit 7'], AttachStdout: true, AttachStderr: true });
    const exStream = await ex.start({ hijack: true, stdin: false });
    const exOut: Buffer[] = [];
    runner.modem.demuxStream(exStream, sink(exOut), sink([]));
    await new Promise((r) => exStream.on('end', r));
    assert.equal(Buffer.concat(exOut).toString(), 'from-exec\n');
    assert.equal((await ex.inspect()).ExitCode, 7);
    const { execFileSync } = await import('node:child_process');
    const tar = execFileSync('tar', ['-c', '-C', '/etc', 'hostname']);
    await runner.putArchive(tar, { path: '/tmp' });
    const back = await runner.getArchive({ path: '/tmp/hostname' });
    const chunks: Buffer[] = [];
    for await (const chunk of back) chunks.push(chunk as Buffer);
    assert.match(execFileSync('tar', ['-t'], { input: Buffer.concat(chunks) }).toString(), /^hostname\n$/);
    const stats = await runner.stats({ stream: false });
    assert.ok(stats.memory_stats.usage > 0);
    assert.ok(stats.networks?.eth0, 'network counters');
    await runner.remove({ force: true });

    const net = await docker.createNetwork({ Name: 'dodenet' });
    assert.equal((await net.inspect()).Name, 'dodenet');
    await net.remove();
    const vol = await docker.createVolume({ Name: 'dodevol' });
    assert.equal((await docker.getVolume('dodevol').inspect()).Name, 'dodevol');
    assert.ok((await docker.listVolumes()).Volumes.some((v) => v.Name === vol.name));
    await docker.getVolume('dodevol').remove();
    await assert.rejects(docker.getContainer('nope').inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
  });

  test('testcontainers: a container with copied content, a wait strategy, a mapped port, exec, logs and copies both ways', async () => {
    // TMPDIR: testcontainers leaves its lock file there, which goes with this test's temp dir.
    Object.assign(process.env, { DOCKER_HOST: `unix://${de.sock}`, DOCKER_CONFIG: de.env.DOCKER_CONFIG, TESTCONTAINERS_RYUK_DISABLED: 'true', TMPDIR: dir });
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer(de.e.image)
      .withCommand(['sh', '-c', 'echo ready; exec httpd -f -p 8080 -h /www'])
      .withExposedPorts(8080)
      .withCopyContentToContainer([{ content: 'hello testcontainers\n', target: '/www/index.html', mode: 0o644 }])
      .withCopyFilesToContainer([{ source: '/etc/hostname', target: '/tmp/hostfile' }])
      .withWaitStrategy(Wait.forLogMessage('ready'))
      .withLabels({ via: 'testcontainers' })
      .start();
    try {
      const res = await fetch(`http://${c.getHost()}:${c.getMappedPort(8080)}/`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'hello testcontainers\n');
      const ex = await c.exec(['cat', '/tmp/hostfile']);
      assert.equal(ex.exitCode, 0);
      assert.equal(ex.output, await readFile('/etc/hostname', 'utf8'));
      await c.copyContentToContainer([{ content: 'later\n', target: '/tmp/later' }]);
      assert.equal((await c.exec(['cat', '/tmp/later'])).output, 'later\n');
      const archive = await c.copyArchiveFromContainer('/tmp/later');
      const chunks: Buffer[] = [];
      for await (const chunk of archive) chunks.push(chunk as Buffer);
      const { execFileSync } = await import('node:child_process');
      assert.equal(execFileSync('tar', ['-xO'], { input: Buffer.concat(chunks) }).toString(), 'later\n');
      assert.match(c.getIpAddress(c.getNetworkNames()[0]), /^\d+\.\d+\.\d+\.\d+$/);
      await c.restart();
      assert.equal((await c.exec(['cat', '/www/index.html'])).output, 'hello testcontainers\n');
    } finally {
      await c.stop();
    }
    assert.equal((await de.ok(['ps', '-aq', '--filter', 'label=via=testcontainers'])).trim(), '', 'stop removes the container');
  });
});

/** docker-py's steps; each prints one JSON line, [name, value]. */
const DOCKER_PY_STEPS = `
import json, os, docker
def out(k, v): print(json.dumps([k, v]), flush=True)
img = os.environ['IMG']
c = docker.DockerClient(base_url=os.environ['DOCKER_HOST'], version='auto')
out('ping', c.ping())
out('api', c.version()['ApiVersion'])

out('images', [t for i in c.images.list() for t in i.tags])
im = c.images.get(img)
im.tag('pytag', 'v1')
out('tagged', c.images.get('pytag:v1').id == im.id)
c.images.remove('pytag:v1')
out('untagged', 'pytag:v1' not in [t for i in c.images.list() for t in i.tags])
repo, tag = img.rsplit(':', 1)
out('pulled', c.images.pull(repo, tag=tag).id == im.id)

out('run', c.containers.run(img, ['sh', '-c', 'echo hi; echo err >&2'], remove=True, stderr=True).decode())
ct = c.containers.run(img, ['sh', '-c', 'echo started; exec sleep 300'], detach=True, name='pyc', labels={'a': 'b'})
ct.reload()
out('detached', [ct.status, ct.name, ct.labels, ct.image.id == im.id])
out('listed', [x.name for x in c.containers.list(filters={'label': 'a=b'})])
r = ct.exec_run(['sh', '-c', 'echo exec; exit 3'])
out('exec', [r.exit_code, r.output.decode()])
for _ in range(100):
    if ct.logs(): break
out('logs', ct.logs().decode())
out('top', ct.top()['Titles'])
out('stats', sorted(ct.stats(stream=False).keys()))
ct.kill()
out('wait', ct.wait())
ct.remove()
out('removed', 'pyc' not in [x.name for x in c.containers.list(all=True)])

n = c.networks.create('pynet', driver='bridge', labels={'x': 'y'})
out('network', [n.name, n.attrs['Labels']])
ct = c.containers.run(img, ['sleep', '300'], detach=True, name='pyn')
n.connect(ct, aliases=['al'])
n.reload()
out('networkContainers', [x.name for x in n.containers])
ct.reload()
out('containerNetworks', sorted(ct.attrs['NetworkSettings']['Networks']))
n.disconnect(ct)
n.reload()
out('disconnected', [x.name for x in n.containers])
ct.remove(force=True)
n.remove()
out('networkGone', c.networks.list(names=['pynet']) == [])

v = c.volumes.create('pyvol', labels={'k': 'v'})
out('volume', [v.name, c.volumes.get('pyvol').attrs['Labels']])
out('volumes', [x.name for x in c.volumes.list()])
v.remove()
out('volumeGone', c.volumes.list() == [])
ct = c.containers.run(img, ['sh', '-c', 'echo kept > /kept; exec sleep 300'], detach=True, name='pyfiles')
ct.exec_run(['true'])
ok = ct.put_archive('/tmp', open(os.environ['TAR'], 'rb').read())
stream, stat = ct.get_archive('/etc/hostname')
out('archive', [ok, stat['name'], len(b''.join(stream)) > 0])
committed = ct.commit(repository='pycommit', tag='v1', changes=['ENV FROM_PY=1'])
out('commit', 'FROM_PY=1' in committed.attrs['Config']['Env'])
out('export', len(b''.join(ct.export())) > 0)
out('diff', any(d['Path'] == '/tmp/one.txt' for d in ct.diff()))
ct.remove(force=True)
saved = b''.join(c.images.get('pycommit:v1').save(named=True))
c.images.remove('pycommit:v1')
out('load', [t for i in c.images.load(saved) for t in i.tags])
out('df', sorted(c.df().keys()))
try:
    c.containers.get('nope')
except docker.errors.NotFound:
    out('notFound', 'NotFound')
`;