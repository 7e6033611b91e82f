import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { runCli, type CliResult } from '../helpers/daemon.ts';
import { dockerSkip, startDockerEngine, type DockerEngine } from '../helpers/docker.ts';
import type { Engine } from '../helpers/engine.ts';

/** The real docker CLI against berth's Docker API socket (test/helpers/docker.ts). */
describe('Docker Engine API with the docker CLI', { skip: dockerSkip }, () => {
  let de: DockerEngine;
  let e: Engine;
  let sock: string;
  const docker = (args: string[]): Promise<CliResult> => de.docker(args);
  const ok = (args: string[]): Promise<string> => de.ok(args);
  const request: DockerEngine['request'] = (method, p) => de.request(method, p);

  before(async () => {
    de = await startDockerEngine();
    ({ e, sock } = de);
  });
  after(async () => {
    await de?.stop();
  });

  test('the socket is root-only; version, ping and the API version range', async () => {
    assert.equal((await stat(sock)).mode & 0o777, 0o600);
    const v = await ok(['version', '--format', '{{.Server.Platform.Name}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}']);
    assert.equal(v.trim(), 'berth 1.50 1.24 linux');
    const ping = await request('HEAD', '/_ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.headers['api-version'], '1.50');
    assert.equal(ping.headers['ostype'], 'linux');
    assert.equal(ping.headers['docker-experimental'], 'false');
    assert.equal((await request('GET', '/v1.41/_ping')).body, 'OK');
    const old = await request('GET', '/v1.12/version');
    assert.equal(old.status, 400);
    assert.deepEqual(JSON.parse(old.body), { message: 'client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version' });
    const tooNew = await request('GET', '/v1.99/version');
    assert.equal(tooNew.status, 400);
    assert.match(JSON.parse(tooNew.body).message, /client version 1.99 is too new. Maximum supported API version is 1.50/);
  });

  test('what is not built answers 501 naming the endpoint', async () => {
    const r = await request('GET', '/v1.50/images/search?term=busybox');
    assert.equal(r.status, 501);
    assert.deepEqual(JSON.parse(r.body), { message: 'GET /images/search is not implemented by berth' });
    const swarm = await docker(['service', 'ls']);
    assert.notEqual(swarm.code, 0);
    assert.match(swarm.stderr, /GET \/services is not implemented by berth/);
  });

  test('docker info', async () => {
    const info = await ok(['info', '--format', '{{.Images}} {{.Driver}} {{.OSType}} {{.DefaultRuntime}}']);
    assert.equal(info.trim(), '1 overlayfs linux runc');
    assert.match(await ok(['info']), /Server Version: /);
  });

  test('docker images, image inspect, tag, rmi and pull', async () => {
    const [repo, tag] = [e.image.slice(0, e.image.lastIndexOf(':')), '1'];
    assert.match(await ok(['images']), new RegExp(`${repo.replace(/\./g, '\\.')}\\s+${tag}\\s+[0-9a-f]{12}`));
    const id = (await ok(['image', 'inspect', '-f', '{{.Id}}', e.image])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal((await ok(['images', '-q'])).trim(), id.slice(7, 19));
    assert.match(await ok(['images', '--digests']), /sha256:[0-9a-f]{64}/);
    // Fields older clients read: ContainerConfig (compose 1.29) always, VirtualSize before API 1.44.
    const current = JSON.parse((await request('GET', `/v1.50/images/${id}/json`)).body);
    assert.equal(current.ContainerConfig.Volumes, null);
    assert.equal(current.VirtualSize, undefined);
    assert.equal(JSON.parse((await request('GET', `/v1.41/images/${id}/json`)).body).VirtualSize, current.Size);
    assert.equal((await ok(['images', '--format', '{{.Repository}}:{{.Tag}}'])).trim(), e.image);

    assert.equal((await ok(['images', '-q', '--filter', `before=${e.image}`])).trim(), '');
    assert.equal((await ok(['images', '-q', '--filter', `since=${e.image}`])).trim(), '');
    assert.equal((await ok(['images', '-q', '--filter', 'until=2000-01-01T00:00:00Z'])).trim(), '');
    assert.equal((await ok(['images', '-q', '--filter', 'until=1m'])).trim(), id.slice(7, 19));
    const badFilter = await docker(['images', '--filter', 'bogus=1']);
    assert.equal(badFilter.code, 1);
    assert.match(badFilter.stderr, /invalid filter 'bogus'/);

    await ok(['tag', e.image, 'mine:v1']);
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', 'mine:v1'])).trim(), id);
    assert.match(await ok(['rmi', 'mine:v1']), /Untagged: mine:v1/);
    const missing = await docker(['image', 'inspect', 'mine:v1']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such image: mine:v1/);
    const rmiMissing = await docker(['rmi', 'nothere:1']);
    assert.equal(rmiMissing.code, 1);
    assert.match(rmiMissing.stderr, /No such image: nothere:1/);

    assert.match(await ok(['rmi', e.image]), new RegExp(`Deleted: ${id}`));
    assert.equal((await ok(['images', '-q'])).trim(), '');
    const pulled = await ok(['pull', e.image]);
    assert.match(pulled, /Pull complete/);
    assert.match(pulled, new RegExp(`Status: Downloaded newer image for ${e.image.replace(/\./g, '\\.')}`));
    assert.equal((await ok(['image', 'inspect', '-f', '{{.Id}}', e.image])).trim(), id);
    const unknown = await docker(['pull', `${repo.replace(/busybox$/, 'nothere')}:1`]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /not found/);
  });

  test('docker run attached: output, exit codes, --rm', async () => {
    const hi = await docker(['run', '--rm', e.image, 'echo', 'hi']);
    assert.equal(hi.code, 0, hi.stderr);
    assert.equal(hi.stdout, 'hi\n');
    const three = await docker(['run', '--rm', e.image, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(three.code, 3);
    assert.equal(three.stdout, 'out\n');
    assert.equal(three.stderr, 'err\n');
    assert.equal((await ok(['ps', '-aq'])).trim(), '', '--rm containers are gone');
    const kept = await docker(['run', '--name', 'kept', e.image, 'sh', '-c', 'exit 5']);
    assert.equal(kept.code, 5);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'kept'])).trim(), 'exited 5');
    await ok(['rm', 'kept']);
  });

  test('docker run of a command that cannot run: 127 or 126 with the start error, as with dockerd; --rm leaves nothing', async () => {
    const missing = await docker(['run', '--rm', e.image, '/nope']);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /Error response from daemon: .*\/nope.*no such file or directory/);
    assert.doesNotMatch(missing.stderr, /unable to upgrade/);
    const notExec = await docker(['run', '--rm', e.image, '/etc/passwd']);
    assert.equal(notExec.code, 126, notExec.stderr);
    assert.match(notExec.stderr, /permission denied/);
    assert.equal((await ok(['ps', '-aq'])).trim(), '', 'the --rm containers are removed');
    const kept = await docker(['run', '--name', 'cannot', e.image, 'nope-command']);
    assert.equal(kept.code, 127, kept.stderr);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'cannot'])).trim(), 'created 127');
    const again = await docker(['start', '-a', 'cannot']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /nope-command/);
    await ok(['rm', 'cannot']);
  });

  test('docker run --init, --device and --mount type=tmpfs with its size and mode', async () => {
    const init = await docker(['run', '--rm', '--init', e.image, 'sh', '-c', 'echo $$; cat /proc/1/cmdline | tr "\\0" " "; exit 3']);
    assert.equal(init.code, 3, init.stderr);
    const [pid, cmdline] = init.stdout.trim().split('\n');
    assert.notEqual(pid, '1');
    assert.match(cmdline, /^\/sbin\/docker-init -- sh -c/);
    const dev = await ok(['run', '--rm', '--device', '/dev/null:/dev/xnull:rw', e.image, 'sh', '-c', 'ls -l /dev/xnull; echo hi > /dev/xnull && echo written']);
    assert.match(dev, /^c.* 1,\s+3 .*\/dev\/xnull\nwritten\n$/);
    const ins = JSON.parse(await ok(['create', '--device', '/dev/zero', e.image]).then((id) => ok(['inspect', id.trim()])))[0];
    assert.deepEqual(ins.HostConfig.Devices, [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/zero', CgroupPermissions: 'rwm' }]);
    await ok(['rm', ins.Id]);
    const tmpfs = await ok(['run', '--rm', '--mount', 'type=tmpfs,target=/scratch,tmpfs-size=2m,tmpfs-mode=1770', e.image, 'sh', '-c', 'grep " /scratch " /proc/mounts; stat -c %a /scratch']);
    assert.match(tmpfs, /^tmpfs \/scratch tmpfs \S*size=2048k/);
    assert.match(tmpfs, /\n1770\n$/);
  });

  test('docker run -d, ps and its filters, exec, logs, inspect, stop, kill, rm; berth ps sees the container', async () => {
    const id = (await ok(['run', '-d', '--name', 'web', '-e', 'GREETING=hello', '--label', 'app=web', e.image, 'sh', '-c', 'echo started; echo oops >&2; sleep 300'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal((await ok(['ps', '-q'])).trim(), id.slice(0, 12));
    assert.match(await ok(['ps']), /Up .*\s+web\n/);
    assert.equal(await ok(['ps', '--format', '{{.Networks}} {{.Mounts}}']), 'bridge \n');
    assert.equal((await ok(['ps', '-q', '--filter', 'name=web'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'name=other'])).trim(), '');
    // Every label asked for must match (compose lists a service's containers so), any name may.
    assert.equal((await ok(['ps', '-q', '--filter', 'label=app=web', '--filter', 'label=tier'])).trim(), '');
    assert.equal((await ok(['ps', '-q', '--filter', 'label=app=web', '--filter', 'label=app'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'name=web', '--filter', 'name=other'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'network=bridge'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'network=none'])).trim(), '');
    assert.equal((await ok(['ps', '-q', '--filter', 'is-task=true'])).trim(), '');
    const later = (await ok(['create', '--network', 'none', e.image])).trim();
    assert.equal((await ok(['ps', '-aq', '--filter', 'since=web'])).trim(), later.slice(0, 12));
    assert.equal((await ok(['ps', '-aq', '--filter', `before=${later}`])).trim(), id.slice(0, 12));
    // A limit lists stopped containers too, as dockerd does.
    assert.equal((await ok(['ps', '-q', '-n', '1'])).trim(), later.slice(0, 12));
    await ok(['rm', later]);
    const pub = (await ok(['run', '-d', '-p', '127.0.0.1::80', e.image, 'sleep', '300'])).trim();
    const hostPort = (await ok(['port', pub, '80'])).trim().split(':')[1];
    assert.equal((await ok(['ps', '-q', '--filter', 'expose=80'])).trim(), pub.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'expose=79-81/tcp'])).trim(), pub.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'expose=80/udp'])).trim(), '');
    assert.equal((await ok(['ps', '-q', '--filter', `publish=${hostPort}`])).trim(), pub.slice(0, 12));
    assert.equal((await ok(['ps', '-q', '--filter', 'publish=80'])).trim(), hostPort === '80' ? pub.slice(0, 12) : '');
    await ok(['rm', '-f', pub]);
    assert.equal((await ok(['ps', '-aq', '--filter', 'status=running'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['ps', '-aq', '--filter', 'status=exited'])).trim(), '');

    const berth = await runCli(['-H', `unix://${e.d.socket}`, 'ps', '--no-trunc', '-q']);
    assert.equal(berth.code, 0, berth.stderr);
    assert.equal(berth.stdout.trim(), id, 'a container made through the Docker API is in the default namespace');

    const ex = await docker(['exec', 'web', 'sh', '-c', 'echo "$GREETING from exec"; echo to-err >&2; exit 4']);
    assert.equal(ex.code, 4);
    assert.equal(ex.stdout, 'hello from exec\n');
    assert.equal(ex.stderr, 'to-err\n');
    assert.equal((await ok(['exec', 'web', 'hostname'])).trim(), id.slice(0, 12));
    // A command that cannot start: its error on the stream, 127 (not found) or 126 (not executable) as the exit code.
    const missing = await docker(['exec', 'web', 'no-such-command']);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stdout + missing.stderr, /no-such-command/);
    assert.equal((await docker(['exec', 'web', '/etc/passwd'])).code, 126);

    const logs = await docker(['logs', 'web']);
    assert.equal(logs.stdout, 'started\n');
    assert.equal(logs.stderr, 'oops\n');
    const ins = JSON.parse(await ok(['inspect', 'web']))[0];
    assert.match(await ok(['inspect', '--size', '-f', '{{.SizeRw}} {{.SizeRootFs}}', 'web']), /^\d+ [1-9]\d+\n$/);
    assert.equal(ins.Id, id);
    assert.equal(ins.Name, '/web');
    assert.equal(ins.State.Running, true);
    assert.equal(ins.Config.Labels.app, 'web');
    assert.ok(ins.Config.Env.includes('GREETING=hello'));

    const rmRunning = await docker(['rm', 'web']);
    assert.equal(rmRunning.code, 1);
    assert.match(rmRunning.stderr, /Error response from daemon: .*running/i);
    assert.equal((await ok(['stop', '-t', '1', 'web'])).trim(), 'web');
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', 'web'])).trim(), 'exited');
    const killStopped = await docker(['kill', 'web']);
    assert.equal(killStopped.code, 1);
    assert.match(killStopped.stderr, /is not running/);
    assert.equal((await ok(['ps', '-aq', '--filter', 'status=exited'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['rm', 'web'])).trim(), 'web');

    await ok(['run', '-d', '--name', 'victim', e.image, 'sleep', '300']);
    assert.equal((await ok(['kill', 'victim'])).trim(), 'victim');
    assert.equal((await ok(['wait', 'victim'])).trim(), '137');
    await ok(['start', 'victim']);
    assert.equal((await ok(['rm', '-f', 'victim'])).trim(), 'victim');
    assert.equal((await ok(['ps', '-aq'])).trim(), '');
  });

  test('docker create, start, wait and logs -f and --tail', async () => {
    const id = (await ok(['create', '--name', 'counter', e.image, 'sh', '-c', 'for i in 1 2 3 4; do echo line$i; done; sleep 1; echo last; exit 2'])).trim();
    assert.equal((await ok(['ps', '-aq', '--filter', 'status=created'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['start', 'counter'])).trim(), 'counter');
    const follow = await docker(['logs', '-f', 'counter']);
    assert.equal(follow.code, 0, follow.stderr);
    assert.equal(follow.stdout, 'line1\nline2\nline3\nline4\nlast\n');
    assert.equal((await ok(['wait', 'counter'])).trim(), '2');
    assert.equal(await ok(['logs', '--tail', '2', 'counter']), 'line4\nlast\n');
    assert.match(await ok(['logs', '-t', '--tail', '1', 'counter']), /^\d{4}-\d\d-\d\dT\S+Z last\n$/);
    await ok(['rm', 'counter']);
  });

  test("errors carry berth's message and a non-zero exit", async () => {
    const start = await docker(['start', 'nope']);
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /No such container: nope/);
    const inspect = await request('GET', '/v1.50/containers/nope/json');
    assert.equal(inspect.status, 404);
    assert.deepEqual(JSON.parse(inspect.body), { message: 'No such container: nope' });
    const badRestart = await docker(['create', '--rm', '--restart', 'always', e.image]);
    assert.notEqual(badRestart.code, 0);
    const badFilter = await docker(['ps', '--filter', 'bogus=1']);
    assert.notEqual(badFilter.code, 0);
    assert.match(badFilter.stderr, /invalid filter 'bogus'/);
    await ok(['create', '--name', 'twice', e.image]);
    const dup = await docker(['create', '--name', 'twice', e.image]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /twice/);
    await ok(['rm', 'twice']);
  });


  test('an exited container attached to and not started keeps its last exit across a berthd restart, and starts later', async () => {
    const run = await docker(['run', '--name', 'reattached', '--network', 'none', e.image, 'sh', '-c', 'echo ran; exit 3']);
    assert.equal(run.code, 3);
    // An attach prepares the next start (docker start -a attaches first); the client goes before any start.
    const upgraded = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: 'POST', path: '/v1.50/containers/reattached/attach?stream=1&stdout=1', headers: { connection: 'Upgrade', upgrade: 'tcp' } });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', reject);
      req.end();
    });
    assert.equal(upgraded, 101);
    const stopped = new Promise((r) => e.d.proc.once('exit', r));
    e.d.proc.kill('SIGTERM');
    await stopped;
    await e.d.restart();
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'reattached'])).trim(), 'exited 3');
    const again = await docker(['start', '-a', 'reattached']);
    assert.equal(again.code, 3, again.stderr);
    assert.equal(again.stdout, 'ran\n');
    await ok(['rm', 'reattached']);
  });
  test('docker pause, unpause, top, rename, container prune and image prune', async () => {
    await ok(['run', '-d', '--name', 'lifecycle', '--network', 'none', e.image, 'sleep', '600']);
    await ok(['pause', 'lifecycle']);
    assert.match(await ok(['ps', '--filter', 'name=lifecycle', '--format', '{{.Status}}']), /\(Paused\)/);
    await ok(['unpause', 'lifecycle']);
    // A start refused (paused) is not a failed start: an AutoRemove container stays.
    await ok(['run', '-d', '--rm', '--name', 'pausedrm', '--network', 'none', e.image, 'sleep', '600']);
    await ok(['pause', 'pausedrm']);
    const refused = await docker(['start', 'pausedrm']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot start a paused container, try unpause instead/);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', 'pausedrm'])).trim(), 'paused');
    await ok(['rm', '-f', 'pausedrm']);
    assert.match(await ok(['top', 'lifecycle']), /PID[\s\S]*sleep 600/);
    await ok(['rename', 'lifecycle', 'renamed']);
    assert.equal((await ok(['ps', '--filter', 'name=renamed', '--format', '{{.Names}}'])).trim(), 'renamed');
    const stopped = (await ok(['create', '--network', 'none', e.image, 'true'])).trim();
    const pruned = await ok(['container', 'prune', '-f']);
    assert.match(pruned, new RegExp(stopped));
    assert.doesNotMatch(pruned, /renamed/);
    await ok(['rm', '-f', 'renamed']);
    assert.match(await ok(['image', 'prune', '-f']), /Total reclaimed space/);
  });
});
