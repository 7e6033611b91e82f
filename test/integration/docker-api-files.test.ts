import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runProcess } from '../helpers/daemon.ts';
import { dockerSkip, startDockerEngine, type DockerEngine } from '../helpers/docker.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

/**
 * The docker CLI's file and image transfer commands against berth's Docker
 * API: cp both ways, diff, commit, export and import, save and load, push
 * with the CLI's credentials, update, system df and prune.
 */
describe('Docker API: cp, diff, commit, export, import, save, load, push, update, df', { skip: dockerSkip }, () => {
  let de: DockerEngine;
  let dir: string;
  let authRegistry: TestRegistry | undefined;

  before(async () => {
    de = await startDockerEngine();
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-docker-files-'));
  });
  after(async () => {
    await de?.stop();
    await authRegistry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('docker cp both ways: files, trees, links, a tar on stdin; a missing path in docker words', async () => {
    await de.ok(['run', '-d', '--name', 'files', '--network', 'none', de.e.image, 'sleep', '600']);
    const local = path.join(dir, 'cp');
    await mkdir(path.join(local, 'tree', 'sub'), { recursive: true });
    await writeFile(path.join(local, 'one.txt'), 'one\n');
    await writeFile(path.join(local, 'tree', 'sub', 'deep.txt'), 'deep\n');
    await de.ok(['cp', path.join(local, 'one.txt'), 'files:/tmp/']);
    await de.ok(['cp', path.join(local, 'tree'), 'files:/tmp/tree']);
    await de.ok(['cp', path.join(local, 'one.txt'), 'files:/tmp/renamed.txt']);
    assert.equal(await de.ok(['exec', 'files', 'cat', '/tmp/one.txt', '/tmp/tree/sub/deep.txt', '/tmp/renamed.txt']), 'one\ndeep\none\n');

    const tar = await runProcess('tar', ['-C', local, '-c', 'one.txt'], {});
    assert.equal(tar.code, 0);
    const fromStdin = await runProcess('sh', ['-c', `tar -C ${local} -c one.txt | ${'/usr/local/bin/docker'} cp - files:/root`], { env: de.env });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(await de.ok(['exec', 'files', 'cat', '/root/one.txt']), 'one\n');

    const back = path.join(dir, 'back');
    await mkdir(back);
    await de.ok(['cp', 'files:/etc/passwd', path.join(back, 'passwd')]);
    assert.match(await readFile(path.join(back, 'passwd'), 'utf8'), /^root:x:0:0:/);
    await de.ok(['cp', 'files:/tmp/tree', path.join(back, 'tree')]);
    assert.equal(await readFile(path.join(back, 'tree', 'sub', 'deep.txt'), 'utf8'), 'deep\n');
    // DIR/. copies DIR's contents, into a directory that is there or one made for them.
    const contents = path.join(back, 'contents');
    await mkdir(contents);
    await de.ok(['cp', 'files:/tmp/tree/.', contents]);
    assert.equal(await readFile(path.join(contents, 'sub', 'deep.txt'), 'utf8'), 'deep\n');
    await de.ok(['cp', 'files:/tmp/tree/.', path.join(back, 'made')]);
    assert.equal(await readFile(path.join(back, 'made', 'sub', 'deep.txt'), 'utf8'), 'deep\n');
    // A link is copied as the link, as docker does without -L.
    await de.ok(['exec', 'files', 'ln', '-s', '/tmp/one.txt', '/tmp/link']);
    await de.ok(['cp', 'files:/tmp/link', path.join(back, 'link')]);
    assert.ok((await lstat(path.join(back, 'link'))).isSymbolicLink());
    assert.equal(await readlink(path.join(back, 'link')), '/tmp/one.txt');
    await de.ok(['cp', '-L', 'files:/tmp/link', path.join(back, 'followed')]);
    assert.equal(await readFile(path.join(back, 'followed'), 'utf8'), 'one\n');

    // A directory is never replaced by a file, nor the reverse, as dockerd refuses it.
    await de.ok(['exec', 'files', 'mkdir', '-p', '/tmp/taken/sub']);
    await writeFile(path.join(local, 'taken'), 'file\n');
    const over = await de.docker(['cp', path.join(local, 'taken'), 'files:/tmp/']);
    assert.equal(over.code, 1);
    assert.match(over.stderr, /cannot overwrite directory "\/tmp\/taken" with non-directory/);
    assert.equal((await de.ok(['exec', 'files', 'ls', '/tmp/taken'])).trim(), 'sub');

    // cp -a into a container with a user would give the entries to that user in dockerd: not done, and said so.
    await de.ok(['create', '--name', 'withuser', '--network', 'none', '-u', '1000', de.e.image]);
    const archiveMode = await de.docker(['cp', '-a', path.join(local, 'one.txt'), 'withuser:/tmp/']);
    assert.equal(archiveMode.code, 1);
    assert.match(archiveMode.stderr, /docker cp -a into a container with a user\) is not implemented by berth/);
    await de.ok(['rm', 'withuser']);
    await de.ok(['cp', '-a', path.join(local, 'one.txt'), 'files:/tmp/archived.txt']);

    const missing = await de.docker(['cp', 'files:/nope', back]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Error response from daemon: Could not find the file \/nope in container files/);
    // The stat of a path, as the CLI reads it: Go's file mode, so a directory has the high bit.
    const head = await de.request('HEAD', '/v1.50/containers/files/archive?path=/tmp/tree');
    assert.equal(head.status, 200);
    const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString('utf8'));
    assert.equal(stat.name, 'tree');
    assert.equal(stat.mode, 2 ** 31 + 0o755);
    assert.equal((await de.request('HEAD', '/v1.50/containers/files/archive?path=/nope')).status, 404);
    // A copy right after another (cp -L: the archive, then a stat) waits for the first one's thaw: never a refused freeze.
    for (let i = 0; i < 100; i++) {
      assert.equal((await de.request('GET', '/v1.50/containers/files/archive?path=/tmp/link')).status, 200);
      assert.equal((await de.request('HEAD', '/v1.50/containers/files/archive?path=/tmp/link')).status, 200, `round ${i}`);
    }
    assert.equal((await de.ok(['inspect', '-f', '{{.State.Status}}', 'files'])).trim(), 'running');
    await de.ok(['rm', '-f', 'files']);

    // A stopped container's files, both ways: its root is mounted for the copy and unmounted after.
    await de.ok(['run', '--name', 'stopped', '--network', 'none', de.e.image, 'sh', '-c', 'echo left > /left; cat /one.txt 2>/dev/null || true']);
    await de.ok(['cp', 'stopped:/left', path.join(back, 'left')]);
    assert.equal(await readFile(path.join(back, 'left'), 'utf8'), 'left\n');
    await de.ok(['cp', path.join(local, 'one.txt'), 'stopped:/one.txt']);
    // start -a attaches to the exited container first, as the CLI does, then starts it: its output comes back.
    assert.equal(await de.ok(['start', '-a', 'stopped']), 'one\n');
    await de.ok(['cp', 'stopped:/one.txt', path.join(back, 'one-back.txt')]);
    assert.equal(await readFile(path.join(back, 'one-back.txt'), 'utf8'), 'one\n');
    await de.ok(['rm', 'stopped']);
  });

  test('docker cp of a path the container keeps swapping between a file and a FIFO always answers, and berthd keeps answering', async () => {
    // An open of the FIFO for reading would wait for a writer: a copy that came to it that way would never answer.
    await de.ok(['run', '-d', '--name', 'swapper', de.e.image, 'sh', '-c', 'mkfifo /p /still; echo data > /f; while :; do mv /f /t; mv /p /f; mv /f /p; mv /t /f; done']);
    try {
      for (let i = 0; i < 30; i++) {
        const r = await de.docker(['cp', 'swapper:/f', '-']);
        assert.ok(r.code === 0 || /Could not find the file \/f|changed while it was being copied/.test(r.stderr), `round ${i}: exit ${r.code}: ${r.stderr}`);
      }
      const fifo = await runProcess('/bin/sh', ['-c', `"$0" cp swapper:/still - | tar -tvf -`, '/usr/local/bin/docker'], { env: de.env, timeoutMs: 60_000 });
      assert.equal(fifo.code, 0, fifo.stderr);
      assert.match(fifo.stdout, /^p\S+ .* still$/m);
      assert.equal((await de.docker(['ps', '-q'])).code, 0, 'berthd answers');
    } finally {
      await de.ok(['rm', '-f', 'swapper']);
    }
  });

  test('docker diff, commit with changes, export and import', async (t) => {
    await de.ok(['run', '-d', '--name', 'changed', '--network', 'none', de.e.image, 'sh', '-c', 'echo added > /added; rm /bin/vi; mkdir -p /etc/extra; exec sleep 600']);
    // A failure here must not leave a container for the next tests to count.
    t.after(() => de.docker(['rm', '-f', 'changed']));
    let diff = '';
    // The shell's last change is the directory: once it shows, so do the others.
    for (let i = 0; i < 100 && !/^A \/etc\/extra$/m.test(diff); i++) diff = await de.ok(['diff', 'changed']);
    assert.match(diff, /^A \/added$/m);
    assert.match(diff, /^D \/bin\/vi$/m);
    assert.match(diff, /^C \/etc$/m);
    assert.match(diff, /^A \/etc\/extra$/m);

    const id = (await de.ok(['commit', '-a', 'someone', '-m', 'a message', '-c', 'ENV COMMITTED=yes', '-c', 'CMD ["cat", "/added"]', 'changed', 'committed:v1'])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await de.ok(['run', '--rm', '--network', 'none', 'committed:v1']), 'added\n');
    assert.equal(await de.ok(['run', '--rm', '--network', 'none', 'committed:v1', 'sh', '-c', 'echo $COMMITTED; test -e /bin/vi || echo no-vi']), 'yes\nno-vi\n');
    assert.equal((await de.ok(['image', 'inspect', '-f', '{{.Author}}|{{.Comment}}', 'committed:v1'])).trim(), 'someone|a message');
    assert.equal((await de.docker(['commit', 'nope'])).code, 1);

    const exported = path.join(dir, 'export.tar');
    await de.ok(['export', '-o', exported, 'changed']);
    const names = (await runProcess('tar', ['-tf', exported])).stdout.split('\n');
    assert.ok(names.includes('added'), 'the export holds the container root');
    assert.ok(!names.includes('bin/vi'));
    const imported = (await de.ok(['import', '-m', 'from export', '-c', 'CMD ["cat", "/added"]', exported, 'imported:v1'])).trim();
    assert.match(imported, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await de.ok(['run', '--rm', '--network', 'none', 'imported:v1']), 'added\n');
    assert.match(await de.ok(['history', 'imported:v1']), /from export/);
    const viaStdin = await runProcess('sh', ['-c', `/usr/local/bin/docker import - piped:v1 < ${exported}`], { env: de.env });
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    const url = await de.docker(['import', 'http://127.0.0.1:1/rootfs.tar']);
    assert.equal(url.code, 1);
    assert.match(url.stderr, /import from a URL .* is not implemented by berth/);
  });

  test('docker save of several images, load (with and without -q)', async () => {
    await de.ok(['tag', de.e.image, 'second:v2']);
    const base = (await de.ok(['create', '--network', 'none', de.e.image])).trim();
    await de.ok(['commit', '-c', 'CMD ["echo", "third"]', base, 'third:v3']);
    await de.ok(['rm', base]);
    const archive = path.join(dir, 'saved.tar');
    await de.ok(['save', '-o', archive, 'second:v2', 'third:v3']);
    const entries = (await runProcess('tar', ['-tf', archive])).stdout;
    assert.match(entries, /^manifest\.json$/m);
    const manifest = JSON.parse((await runProcess('tar', ['-xOf', archive, 'manifest.json'])).stdout);
    assert.deepEqual(manifest.map((m: { RepoTags: string[] }) => m.RepoTags).flat().sort(), ['second:v2', 'third:v3']);

    await de.ok(['rmi', 'second:v2', 'third:v3']);
    const loaded = await de.ok(['load', '-i', archive]);
    assert.match(loaded, /Loaded image: second:v2/);
    assert.match(loaded, /Loaded image: third:v3/);
    assert.equal(await de.ok(['run', '--rm', '--network', 'none', 'third:v3']), 'third\n');
    const quiet = await runProcess('sh', ['-c', `/usr/local/bin/docker load -q < ${archive}`], { env: de.env });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stdout, 'Loaded image: second:v2\nLoaded image: third:v3\n');
    const garbage = await de.docker(['load'], { input: 'not a tar' });
    assert.equal(garbage.code, 1);
    const noImage = await de.docker(['save', 'nothere:1']);
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /nothere/);
  });

  test('docker push with the credentials of the CLI (X-Registry-Auth), progress as docker shows it', async () => {
    authRegistry = await startRegistry({ auth: 'basic' });
    const ref = `${authRegistry.host}/test/pushed:v1`;
    await de.ok(['tag', de.e.image, ref]);
    const anonymous = await de.docker(['push', ref]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr + anonymous.stdout, /unauthorized|authentication required|Unauthenticated|401/i);

    const auth = (user: string, password: string) => JSON.stringify({ auths: { [authRegistry!.host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
    await writeFile(path.join(de.env.DOCKER_CONFIG, 'config.json'), auth(authRegistry.user!, 'wrong'));
    const wrong = await de.docker(['push', ref]);
    assert.equal(wrong.code, 1);
    const badLogin = await de.docker(['login', '-u', authRegistry.user!, '--password-stdin', authRegistry.host], { input: 'wrong\n' });
    assert.equal(badLogin.code, 1);
    // docker login: berth checks the credentials, the CLI keeps them and sends them with the push.
    await rm(path.join(de.env.DOCKER_CONFIG, 'config.json'));
    const login = await de.docker(['login', '-u', authRegistry.user!, '--password-stdin', authRegistry.host], { input: `${authRegistry.password}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/);
    assert.match(await readFile(path.join(de.env.DOCKER_CONFIG, 'config.json'), 'utf8'), new RegExp(authRegistry.host.replace(/\./g, '\\.')));
    const pushed = await de.docker(['push', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, new RegExp(`The push refers to repository \\[${authRegistry.host.replace(/\./g, '\\.')}/test/pushed\\]`));
    assert.match(pushed.stdout, /[0-9a-f]{12}: Pushed/);
    assert.match(pushed.stdout, /v1: digest: sha256:[0-9a-f]{64} size: \d+/);
    const missing = await de.docker(['push', `${authRegistry.host}/test/nothere:v1`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /An image does not exist locally with the tag: /);

    // What was pushed comes back: pulled with the same credentials after the local copy is gone.
    await de.ok(['rmi', ref]);
    assert.match(await de.ok(['pull', ref]), /Downloaded newer image/);
    await rm(path.join(de.env.DOCKER_CONFIG, 'config.json'));
  });

  test('docker update: memory and the restart policy, on a running container', async () => {
    await de.ok(['run', '-d', '--name', 'upd', '--network', 'none', de.e.image, 'sleep', '600']);
    await de.ok(['update', '--memory', '64m', '--memory-swap', '128m', '--restart', 'on-failure:2', 'upd']);
    assert.equal((await de.ok(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}', 'upd'])).trim(), `${64 << 20} on-failure 2`);
    const limit = (await de.ok(['exec', 'upd', 'sh', '-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'])).trim();
    assert.equal(limit, String(64 << 20));
    const missing = await de.docker(['update', '--memory', '64m', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such container: nope/);
    await de.ok(['rm', '-f', 'upd']);
  });

  test('docker system df, build prune and system prune', async () => {
    await de.ok(['volume', 'create', 'dfvol']);
    await de.ok(['run', '-d', '--name', 'dfc', '--network', 'none', '-v', 'dfvol:/data', de.e.image, 'sh', '-c', 'head -c 100000 /dev/zero > /data/blob; exec sleep 600']);
    const df = await de.ok(['system', 'df']);
    assert.match(df, /^Images\s+\d+\s+\d+\s+\S+/m);
    assert.match(df, /^Containers\s+1\s+1\s+/m);
    assert.match(df, /^Local Volumes\s+1\s+1\s+/m);
    assert.match(df, /^Build Cache\s+0\s+0\s+0B/m);
    let verbose = '';
    // The volume's blocks on disk: the 100 kB written and a little more.
    const sized = /dfvol\s+1\s+1\d\d(\.\d+)?kB/;
    for (let i = 0; i < 100 && !sized.test(verbose); i++) verbose = await de.ok(['system', 'df', '-v']);
    assert.match(verbose, sized);
    assert.match(verbose, /…"\s+1\s+[\d.]+k?B\s.*dfc\n/, 'the container is listed with its one local volume');
    const raw = JSON.parse((await de.request('GET', '/v1.50/system/df?type=volume')).body);
    assert.deepEqual(Object.keys(raw), ['Volumes']);
    assert.equal((await de.request('GET', '/v1.50/system/df?type=bogus')).status, 400);

    assert.match(await de.ok(['builder', 'prune', '-f']), /Total reclaimed space: 0B/);
    await de.ok(['rm', '-f', 'dfc']);
    await de.ok(['create', '--name', 'stale', '--network', 'none', de.e.image]);
    const pruned = await de.ok(['system', 'prune', '-f']);
    assert.match(pruned, /Deleted Containers:\n[0-9a-f]{64}\n/);
    assert.equal((await de.ok(['ps', '-aq'])).trim(), '');
    await de.ok(['volume', 'rm', 'dfvol']);
  });
});
