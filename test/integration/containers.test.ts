import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';

/**
 * The container lifecycle end to end: the real CLI against a real berthd,
 * containers run by runc under berth-monitor from an image pulled from a
 * loopback registry.
 */
describe('containers', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-ct-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => e.d.cli(args);

  it('runs a command and returns its output and exit code', async () => {
    const ok = await cli('run', '--rm', e.image, 'echo', 'hello');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'hello\n');
    const three = await cli('run', '--rm', e.image, 'sh', '-c', 'echo out; echo err >&2; exit 3');
    assert.equal(three.code, 3);
    assert.equal(three.stdout, 'out\n');
    assert.equal(three.stderr, 'err\n');
    assert.equal((await cli('ps', '-aq')).stdout, '', '--rm removed both containers');
  });

  it('gives 127 for a missing executable and 126 for one that is not executable', async () => {
    const missing = await cli('run', '--rm', e.image, 'no-such-binary');
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /no-such-binary/);
    const notExec = await cli('run', '--rm', e.image, '/etc/passwd');
    assert.equal(notExec.code, 126, notExec.stderr);
    assert.equal((await cli('ps', '-aq')).stdout, '');
  });

  it('frees the name, the mounts and the record by the time run --rm and rm -f return', async () => {
    const name = `once-${process.pid}`;
    const mountsUnder = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => (l.split(' ')[4] ?? '').startsWith(e.d.dir + '/'));
    const before = mountsUnder().length;
    for (let i = 0; i < 2; i++) {
      const r = await cli('run', '--rm', '--network', 'none', '--name', name, e.image, 'true');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(mountsUnder().length, before);
    }
    // A --rm container's writable layer is mounted volatile (it is thrown away at exit).
    const rm = await cli('run', '--rm', '-d', '--network', 'none', '--name', name, e.image, 'sleep', '600');
    assert.equal(rm.code, 0, rm.stderr);
    assert.ok(mountsUnder().some((l) => / - overlay .*volatile/.test(l)), 'volatile overlay');
    assert.equal((await cli('rm', '-f', name)).code, 0);
    const kept = await cli('run', '-d', '--network', 'none', '--name', name, e.image, 'sleep', '600');
    assert.equal(kept.code, 0, kept.stderr);
    assert.ok(!mountsUnder().some((l) => / - overlay .*volatile/.test(l)), 'a kept container is not volatile');
    assert.equal((await cli('rm', '-f', name)).code, 0);
    const failed = await cli('run', '-d', '--rm', '--network', 'none', e.image, 'no-such-binary');
    assert.equal(failed.code, 127, failed.stderr);
    assert.equal((await cli('ps', '-aq')).stdout, '');
    assert.equal(mountsUnder().length, before);
  });

  it('passes stdin through with -i', async () => {
    const r = await e.d.cli(['run', '--rm', '-i', e.image, 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'line one\nline two\ndone\n');
  });

  it('applies the default security profile', async () => {
    const r = await cli('run', '--rm', e.image, 'sh', '-c', 'grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status; cat /proc/timer_list | wc -c; grep " /proc/sys " /proc/self/mountinfo');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CapEff:\s+00000000a80425fb/);
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.match(r.stdout, /NoNewPrivs:\s+0/);
    assert.match(r.stdout, /^0$/m, '/proc/timer_list is masked');
    assert.match(r.stdout, / \/proc\/sys ro,/, '/proc/sys is read-only');
    const nnp = await cli('run', '--rm', '--security-opt', 'no-new-privileges', '--cap-drop', 'ALL', '--cap-add', 'NET_BIND_SERVICE', e.image, 'grep', '-E', '^(CapEff|NoNewPrivs):', '/proc/self/status');
    assert.match(nnp.stdout, /CapEff:\s+0000000000000400/);
    assert.match(nnp.stdout, /NoNewPrivs:\s+1/);
    const priv = await cli('run', '--rm', '--privileged', e.image, 'grep', '^Seccomp:', '/proc/self/status');
    assert.match(priv.stdout, /Seccomp:\s+0/);
  });

  it('puts resource limits in the container cgroup', async () => {
    const r = await cli('run', '--rm', '-m', '64m', '--pids-limit', '50', '--cpus', '0.5', e.image, 'sh', '-c',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['67108864', '50', '50000']);
  });

  it('runs detached, lists, logs, execs, stops and removes', async () => {
    const run = await cli('run', '-d', '--name', 'lifecycle', e.image, 'sh', '-c', 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done');
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await cli('ps');
    assert.match(ps.stdout, /lifecycle/);
    assert.match(ps.stdout, /Up /);
    await waitFor(async () => (await cli('logs', 'lifecycle')).stdout === 'started\n', 'first log line');
    const ex = await cli('exec', 'lifecycle', 'sh', '-c', 'echo in-exec; exit 4');
    assert.equal(ex.code, 4);
    assert.equal(ex.stdout, 'in-exec\n');
    const exMissing = await cli('exec', 'lifecycle', 'nope');
    assert.equal(exMissing.code, 127, exMissing.stderr);
    const inspect = JSON.parse((await cli('inspect', 'lifecycle')).stdout)[0];
    assert.equal(inspect.State.Running, true);
    assert.equal(inspect.Name, '/lifecycle');
    const rmRunning = await cli('rm', 'lifecycle');
    assert.equal(rmRunning.code, 1);
    assert.match(rmRunning.stderr, /cannot remove a running container/i);
    const dup = await cli('run', '-d', '--name', 'lifecycle', e.image, 'true');
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already in use/);
    const top = await cli('top', 'lifecycle');
    assert.match(top.stdout, /PID/);
    const stop = await cli('stop', 'lifecycle');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await cli('logs', 'lifecycle')).stdout, 'started\nbye\n');
    assert.equal((await cli('inspect', '-f', '{{.State.ExitCode}}', 'lifecycle')).stdout.trim(), '0');
    assert.equal((await cli('start', 'lifecycle')).code, 0);
    assert.equal((await cli('kill', 'lifecycle')).code, 0);
    assert.equal((await cli('wait', 'lifecycle')).stdout.trim(), '137');
    assert.equal((await cli('rm', 'lifecycle')).code, 0);
    assert.equal((await cli('inspect', 'lifecycle')).code, 1);
    assert.equal(existsSync(path.join(e.d.state, 'containers', 'default', id)), false, 'bundle removed');
    assert.doesNotMatch(readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(id), 'rootfs unmounted');
  });

  it('follows logs while a container writes', async () => {
    const r = await cli('run', '--name', 'follow', '-d', e.image, 'sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done');
    assert.equal(r.code, 0, r.stderr);
    const f = await cli('logs', '-f', 'follow');
    assert.equal(f.stdout, 'line1\nline2\nline3\n');
    const tail = await cli('logs', '--tail', '1', '-t', 'follow');
    assert.match(tail.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z line3\n$/);
    await cli('rm', 'follow');
  });

  it('restarts on failure up to the limit', async () => {
    const r = await cli('run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', e.image, 'sh', '-c', 'exit 1');
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => {
      const s = (await cli('inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky')).stdout.trim();
      return s === '2 exited';
    }, 'two restarts then exited', 30_000);
    const rm = await cli('rm', 'flaky');
    assert.equal(rm.code, 0, rm.stderr);
  });

  it('copies files both ways and keeps named volumes', async () => {
    writeFileSync(path.join(tmp, 'in.txt'), 'from host\n');
    await cli('run', '-d', '--name', 'cp', '-v', 'data:/data', e.image, 'sleep', '1000');
    assert.equal((await cli('cp', path.join(tmp, 'in.txt'), 'cp:/data/')).code, 0);
    const cat = await cli('exec', 'cp', 'cat', '/data/in.txt');
    assert.equal(cat.stdout, 'from host\n');
    assert.equal((await cli('cp', 'cp:/etc/passwd', path.join(tmp, 'passwd'))).code, 0);
    assert.match(readFileSync(path.join(tmp, 'passwd'), 'utf8'), /^root:x:0:0/);
    await cli('rm', '-f', 'cp');
    const again = await cli('run', '--rm', '-v', 'data:/data', e.image, 'cat', '/data/in.txt');
    assert.equal(again.stdout, 'from host\n');
    assert.match((await cli('volume', 'ls')).stdout, /data/);
    assert.equal((await cli('volume', 'rm', 'data')).code, 0);
  });

  it('refuses a bind mount whose source does not exist', async () => {
    const r = await cli('run', '--rm', '-v', '/no/such/dir:/x', e.image, 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /bind source path does not exist/);
    assert.equal((await cli('ps', '-aq')).stdout, '', (await cli('ps', '-a')).stdout);
  });

  it('gives a real terminal with -t', async () => {
    // util-linux `script` provides the pseudo-terminal the CLI runs in.
    const bin = path.resolve(import.meta.dirname, '../../bin/berth');
    const out = execFileSync('script', ['-q', '-e', '-c', `${bin} -H unix://${e.d.socket} run --rm -t ${e.image} sh -c "tty; stty size"`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, COLUMNS: '100', LINES: '30' },
      timeout: 60_000,
    });
    assert.match(out, /\/dev\/pts\/\d+/);
  });

  it('keeps containers running across a daemon crash and manages them after', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await cli('run', '-d', '--name', `survivor${i}`, e.image, 'sh', '-c', `echo hi${i}; exec sleep 1000`);
      assert.equal(r.code, 0, r.stderr);
      ids.push(r.stdout.trim());
    }
    const quick = await cli('run', '-d', '--name', 'quick', e.image, 'sh', '-c', 'sleep 1; exit 7');
    assert.equal(quick.code, 0);
    await e.d.kill();
    await new Promise((r) => setTimeout(r, 2000));
    await e.d.restart();
    const ps = await cli('ps', '-q', '--no-trunc');
    for (const id of ids) assert.ok(ps.stdout.includes(id), `container ${id} still running`);
    assert.equal((await cli('inspect', '-f', '{{.State.ExitCode}}', 'quick')).stdout.trim(), '7', 'exit code recorded while the daemon was down');
    assert.equal((await cli('logs', 'survivor3')).stdout, 'hi3\n');
    assert.equal((await cli('exec', 'survivor5', 'echo', 'alive')).stdout, 'alive\n');
    assert.equal((await cli('stop', '-t', '1', 'survivor7')).code, 0);
    assert.equal((await cli('rm', '-f', ...ids, 'quick')).code, 0);
    assert.equal((await cli('ps', '-aq')).stdout, '');
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}
