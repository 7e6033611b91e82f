import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBin, startDaemon } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { busyboxImage, busyboxRootfs } from '../helpers/image-builder.ts';

/**
 * The host side of the security defaults, through the real CLI and daemon:
 * `cp` and layers that try to reach outside the container, who may reach the
 * daemon's and monitors' sockets, and resource settings the daemon must not
 * loosen (oom_score_adj, rlimits).
 */

/**
 * Try to connect to a unix socket as uid 65534; resolves "connected" or the
 * error code. It changes into the socket's directory first, since monitor
 * socket paths are longer than sun_path allows.
 */
function connectAsNobody(socket: string, gid = 65534): Promise<string> {
  const script = `try{process.chdir(${JSON.stringify(path.dirname(socket))})}catch(e){console.log(e.code);process.exit(0)};require('net').connect(${JSON.stringify(path.basename(socket))}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',(e)=>{console.log(e.code);process.exit(0)})`;
  return new Promise((resolve, reject) =>
    execFile('setpriv', ['--reuid', '65534', '--regid', String(gid), '--clear-groups', '--', nodeBin, '-e', script], (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))),
  );
}

/** Directories under `dir` (not following symlinks, not into container filesystems) that others may write. */
function worldWritable(dir: string, skip: (p: string) => boolean, depth = 6): string[] {
  const out: string[] = [];
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return out;
  }
  if (!st.isDirectory() || skip(dir)) return out;
  if (st.mode & 0o002) out.push(`${dir} ${(st.mode & 0o7777).toString(8)}`);
  if (depth > 0) for (const n of readdirSync(dir)) out.push(...worldWritable(path.join(dir, n), skip, depth - 1));
  return out;
}

describe('security: host side', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  let hostDir: string;
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-sech-'));
    hostDir = path.join(tmp, 'host');
    rmSync(hostDir, { force: true, recursive: true });
    (await import('node:fs')).mkdirSync(hostDir);
    writeFileSync(path.join(hostDir, 'secret'), 'host secret\n');
    e = await startEngine({
      imageSpec: busyboxImage([
        {
          files: [
            { path: 'rootlink', type: 'symlink', target: '/' },
            { path: 'uplink', type: 'symlink', target: '../../../../../../../..' },
            { path: 'hostlink', type: 'symlink', target: hostDir },
            { path: 'secretlink', type: 'symlink', target: path.join(hostDir, 'secret') },
            { path: 'passwdlink', type: 'symlink', target: 'etc/passwd' },
          ],
        },
      ]),
    });
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => e.d.cli(args);

  it('cp into a container resolves symlinks inside it, never on the host', async () => {
    const id = (await cli('run', '-d', e.image, 'sleep', '300')).stdout.trim();
    const src = path.join(tmp, 'payload');
    writeFileSync(src, 'payload\n');
    const name = `berth-cp-escape-${path.basename(tmp)}`;
    for (const link of ['rootlink', 'uplink']) {
      const r = await cli('cp', src, `${id}:/${link}/${name}`);
      assert.equal(r.code, 0, `${link}: ${r.stderr}`);
    }
    // As docker: the link's target does not exist inside the container.
    const viaHost = await cli('cp', src, `${id}:/hostlink/${name}`);
    assert.notEqual(viaHost.code, 0);
    assert.match(viaHost.stderr, /could not find the file \/hostlink/i);
    assert.equal(existsSync(`/${name}`), false, 'nothing written at the host root');
    assert.equal(existsSync(path.join(hostDir, name)), false, 'nothing written in the host dir a link names');
    // The container was frozen only for the copies.
    assert.equal((await cli('inspect', '-f', '{{.State.Status}}', id)).stdout.trim(), 'running');
    const inside = await cli('exec', id, 'cat', `/${name}`);
    assert.equal(inside.stdout, 'payload\n', inside.stderr);
    await cli('rm', '-f', id);
  });

  it('cp out of a container cannot read host files through a symlink', async () => {
    const id = (await cli('create', e.image, 'true')).stdout.trim();
    const out = path.join(tmp, 'out');
    (await import('node:fs')).mkdirSync(out);
    for (const [srcPath, follow] of [['/hostlink/secret', false], ['/secretlink', true], ['/uplink' + hostDir + '/secret', false]] as const) {
      const r = await cli('cp', ...(follow ? ['-L'] : []), `${id}:${srcPath}`, out);
      assert.notEqual(r.code, 0, `${srcPath} copied: ${r.stdout}`);
      assert.match(r.stderr, /could not find the file|no such file/i);
    }
    // Without -L the link itself comes out, still pointing where it did.
    const link = await cli('cp', `${id}:/secretlink`, out);
    assert.equal(link.code, 0, link.stderr);
    assert.ok(lstatSync(path.join(out, 'secretlink')).isSymbolicLink());
    // -L follows a link that stays inside: the file comes out under the link's name.
    const followed = await cli('cp', '-L', `${id}:/passwdlink`, out);
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(readFileSync(path.join(out, 'passwdlink'), 'utf8'), /^root:x:0:0:/);
    assert.deepEqual(readdirSync(out).sort(), ['passwdlink', 'secretlink']);
    await cli('rm', id);
  });

  it('-v binds the host dir as given, :ro read-only', async () => {
    const r = await cli('run', '--rm', '-v', `${hostDir}:/data`, '-v', `${hostDir}:/ro:ro`, e.image, 'sh', '-c', 'cat /data/secret; echo new > /data/new; echo x > /ro/x || echo ro-refused');
    assert.equal(r.stdout, 'host secret\nro-refused\n', r.stderr);
    assert.equal(readFileSync(path.join(hostDir, 'new'), 'utf8'), 'new\n');
    rmSync(path.join(hostDir, 'new'));
  });

  it('a symlink from a lower layer cannot carry an upper layer outside the snapshot', async () => {
    const target = path.join(tmp, 'layer-target');
    (await import('node:fs')).mkdirSync(target);
    const ref = await e.push('crosslayer', {
      layers: [
        { files: [...busyboxRootfs(), { path: 'evil', type: 'symlink', target }] },
        // The directory entry comes last so the file is written through the lower layer's link.
        { files: [{ path: 'evil/pwned', content: 'bad' }, { path: 'evil', type: 'dir' }] },
      ],
      config: { Cmd: ['sh'] },
    });
    const r = await cli('pull', ref);
    assert.deepEqual(readdirSync(target), [], `pull ${r.code}: ${r.stderr}`);
    if (r.code === 0) {
      const inside = await cli('run', '--rm', ref, 'cat', '/evil/pwned');
      assert.equal(inside.stdout, 'bad');
    } else {
      assert.match(r.stderr, /escape|outside|refus|invalid/i);
    }
  });

  it('the API socket is 0600 root; monitor sockets and task dirs are out of reach of other users', async () => {
    const st = statSync(e.d.socket);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, 0);
    assert.deepEqual(readdirSync(e.d.state).filter((n) => n.startsWith('.berthd-')), [], 'the private bind dir is gone');
    // The temp dir above the state dir is 0700: open it so only berth's own modes decide.
    chmodSync(e.d.dir, 0o711);
    assert.equal(await connectAsNobody(e.d.socket), 'EACCES');
    const id = (await cli('run', '-d', e.image, 'sleep', '300')).stdout.trim();
    const taskDir = path.join(e.d.state, 'tasks', 'default', id);
    const ctl = path.join(taskDir, 'ctl.sock');
    assert.ok(existsSync(ctl));
    assert.equal(statSync(ctl).mode & 0o777, 0o600);
    assert.equal(await connectAsNobody(ctl), 'EACCES');
    assert.equal(statSync(path.join(e.d.state, 'tasks')).mode & 0o077, 0, 'tasks dir is private');
    const skip = (p: string) => /\/(fs|rootfs|merged|upper|work|_data)$/.test(p);
    assert.deepEqual([...worldWritable(e.d.state, skip), ...worldWritable(e.d.root, skip)], []);
    for (const d of [e.d.state, e.d.root]) assert.equal(statSync(d).mode & 0o022, 0, `${d} writable by others`);
    // What holds container configs (their environment) and specs is root's alone.
    for (const f of ['metadata.db', 'metadata.db-wal']) assert.equal(statSync(path.join(e.d.root, f)).mode & 0o077, 0, f);
    assert.equal(statSync(path.join(e.d.state, 'containers', 'default', id, 'config.json')).mode & 0o077, 0, 'config.json');
    await cli('rm', '-f', id);
    chmodSync(e.d.dir, 0o700);
  });

  it('daemon.socket_mode and socket_group widen the socket only as configured', async () => {
    const d = await startDaemon({ config: 'version = 1\n[daemon]\nsocket_mode = "0660"\nsocket_group = "nogroup"\n' });
    try {
      const st = statSync(d.socket);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, 65534);
      chmodSync(d.dir, 0o711);
      assert.equal(await connectAsNobody(d.socket, 65534), 'connected');
      assert.equal(await connectAsNobody(d.socket, 65533), 'EACCES');
    } finally {
      await d.stop();
    }
    const bad = await startDaemon({ config: 'version = 1\n[daemon]\nsocket_group = "no-such-group-berth"\n' }).then(
      async (x) => {
        await x.stop();
        return 'started';
      },
      (err: Error) => err.message,
    );
    assert.match(bad, /socket_group: no group "no-such-group-berth"/);
  });

  it('never lowers oom_score_adj and refuses rlimits above the host hard limit', async () => {
    const daemonAdj = readFileSync(`/proc/${e.d.proc.pid}/oom_score_adj`, 'utf8').trim();
    const r = await cli('run', '--rm', e.image, 'cat', '/proc/self/oom_score_adj');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Number(r.stdout.trim()) >= Number(daemonAdj), `container ${r.stdout.trim()} < daemon ${daemonAdj}`);
    const hard = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${e.d.proc.pid}/limits`, 'utf8'))![1]);
    const over = await cli('run', '--rm', '--ulimit', `nofile=${hard + 10000}:${hard + 10000}`, e.image, 'true');
    assert.notEqual(over.code, 0);
    assert.match(over.stderr, new RegExp(`ulimit nofile: hard limit ${hard + 10000} exceeds the host's hard limit ${hard}`));
    const ok = await cli('run', '--rm', '--ulimit', 'nofile=1024:2048', e.image, 'sh', '-c', 'ulimit -n; ulimit -Hn');
    assert.equal(ok.stdout, '1024\n2048\n', ok.stderr);
    const dflt = await cli('run', '--rm', e.image, 'sh', '-c', 'ulimit -Hn');
    assert.ok(Number(dflt.stdout.trim()) <= hard);
  });
});
