import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
 * Debian's).
 */
const compose = '/usr/bin/docker-compose';
const python = '/usr/bin/python3';
const clientsSkip = dockerSkip ?? (existsSync(compose) && existsSync('/usr/lib/python3/dist-packages/docker') ? undefined : 'needs docker-compose and python3-docker (scripts/setup.sh)');

describe('Docker API: docker-compose and docker-py', { skip: clientsSkip }, () => {
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
    const r = await runProcess(python, [script], { env: { ...de.env, IMG: de.e.image }, timeoutMs: 180_000 });
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
    assert.equal(got.notFound, 'NotFound');
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
try:
    c.containers.get('nope')
except docker.errors.NotFound:
    out('notFound', 'NotFound')
`;
