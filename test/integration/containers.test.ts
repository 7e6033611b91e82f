import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { busyboxImage } from '../helpers/image-builder.ts';

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

  it('records an OOM kill in the container state, and clears it at the next start', async () => {
    // No swap on the hosts this runs on, and --memory-swap equal to --memory: the kernel's OOM killer acts.
    const hog = 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived';
    const r = await cli('run', '--name', 'oom-hog', '--network', 'none', '-m', '16m', '--memory-swap', '16m', e.image, 'sh', '-c', hog);
    assert.notEqual(r.code, 0, r.stdout);
    const state = async () => JSON.parse((await cli('inspect', '-f', '{{json .State}}', 'oom-hog')).stdout) as { OOMKilled: boolean; ExitCode: number };
    assert.equal((await state()).OOMKilled, true);
    assert.equal((await cli('update', '-m', '512m', '--memory-swap', '512m', 'oom-hog')).code, 0);
    const again = await cli('start', '-a', 'oom-hog');
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await state()).OOMKilled, false);
    assert.equal((await cli('rm', 'oom-hog')).code, 0);
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

  it("stops with the image's StopSignal unless the container names its own", async () => {
    const image = await e.push('stopsignal', busyboxImage([], { Cmd: ['sh'], StopSignal: 'SIGUSR1' }));
    assert.equal((await cli('pull', image)).code, 0);
    // A TERM would end the script with 143: only USR1 gives 42. The stop waits for the traps: one that
    // came before them would end the shell by the signal's default action instead.
    const script = 'trap "exit 42" USR1; trap "exit 43" TERM; echo trapped; while true; do sleep 0.1; done';
    const trapped = (name: string) => waitFor(async () => (await cli('logs', name)).stdout.includes('trapped'), `${name} to set its traps`);
    const run = await cli('run', '-d', '--name', 'stopsig', image, 'sh', '-c', script);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await cli('inspect', '-f', '{{.Config.StopSignal}}', 'stopsig')).stdout.trim(), 'SIGUSR1');
    await trapped('stopsig');
    assert.equal((await cli('stop', '-t', '20', 'stopsig')).code, 0);
    assert.equal((await cli('inspect', '-f', '{{.State.ExitCode}}', 'stopsig')).stdout.trim(), '42');
    const own = await cli('run', '-d', '--name', 'stopsig-own', '--stop-signal', 'TERM', image, 'sh', '-c', script);
    assert.equal(own.code, 0, own.stderr);
    await trapped('stopsig-own');
    assert.equal((await cli('stop', '-t', '20', 'stopsig-own')).code, 0);
    assert.equal((await cli('inspect', '-f', '{{.State.ExitCode}}', 'stopsig-own')).stdout.trim(), '43');
    assert.equal((await cli('rm', 'stopsig', 'stopsig-own')).code, 0);
    assert.equal((await cli('rmi', image)).code, 0);
  });

  it('refuses a bad update value before touching any container', async () => {
    const r = await cli('update', '--memory', '1x', 'no-such-container');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /invalid argument "1x" for "-m, --memory" flag: invalid size/);
    assert.doesNotMatch(r.stderr, /No such container/);
  });

  it('shares namespaces with --pid, --ipc and --uts', async () => {
    const ns = 'for n in pid ipc uts; do busybox readlink /proc/self/ns/$n; done';
    assert.equal((await cli('run', '-d', '--name', 'ns-owner', '--network', 'none', e.image, 'sleep', '1000')).code, 0);
    const [ownerPid, ownerIpc] = (await cli('exec', 'ns-owner', 'sh', '-c', ns)).stdout.split('\n');
    const joined = await cli('run', '--rm', '--network', 'none', '--pid', 'container:ns-owner', '--ipc', 'container:ns-owner', e.image, 'sh', '-c', `${ns}; ps -o pid,args`);
    assert.equal(joined.code, 0, joined.stderr);
    const lines = joined.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 2), [ownerPid, ownerIpc]);
    assert.match(joined.stdout, /^\s*1 sleep 1000$/m, 'the owner is pid 1 of the shared pid namespace');
    const own = (await cli('run', '--rm', '--network', 'none', e.image, 'sh', '-c', ns)).stdout.split('\n');
    assert.notEqual(own[0], ownerPid);
    assert.notEqual(own[1], ownerIpc);
    const host = (await cli('run', '--rm', '--network', 'none', '--pid', 'host', '--uts', 'host', e.image, 'sh', '-c', ns)).stdout.split('\n');
    assert.equal(host[0], readlinkSync('/proc/self/ns/pid'));
    assert.equal(host[2], readlinkSync('/proc/self/ns/uts'));
    assert.equal((await cli('inspect', '-f', '{{.HostConfig.PidMode}}', 'ns-owner')).stdout.trim(), '');

    const conflict = await cli('run', '--rm', '--uts', 'host', '-h', 'name', e.image, 'true');
    assert.equal(conflict.code, 125);
    assert.match(conflict.stderr, /Conflicting options: hostname and the UTS mode/);
    assert.equal((await cli('run', '--rm', '--pid', 'bogus', e.image, 'true')).code, 125);
    assert.equal((await cli('stop', '-t', '0', 'ns-owner')).code, 0);
    const stopped = await cli('run', '--rm', '--network', 'none', '--pid', 'container:ns-owner', e.image, 'true');
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /cannot join the pid namespace of container ns-owner: it is not running/);
    assert.equal((await cli('rm', 'ns-owner')).code, 0);
  });

  it('sets sysctls, maps devices and exposes ports, refusing what docker refuses', async () => {
    const r = await cli('run', '--rm', '--network', 'none', '--sysctl', 'net.core.somaxconn=1234', '--device', '/dev/null:/dev/mynull', e.image, 'sh', '-c', 'cat /proc/sys/net/core/somaxconn; ls -l /dev/mynull; echo x > /dev/mynull && echo wrote');
    assert.equal(r.code, 0, r.stderr);
    const [somaxconn, dev, wrote] = r.stdout.trim().split('\n');
    assert.equal(somaxconn, '1234');
    assert.match(dev, /^c.* 1,\s+3 .*\/dev\/mynull$/);
    assert.equal(wrote, 'wrote');
    // An interface's own sysctl needs the interface in place when the runtime applies it.
    const iface = await cli('run', '--rm', '--sysctl', 'net.ipv4.conf.eth0.route_localnet=1', e.image, 'cat', '/proc/sys/net/ipv4/conf/eth0/route_localnet');
    assert.equal(iface.stdout, '1\n', iface.stderr);
    const host = await cli('run', '--rm', '--sysctl', 'vm.swappiness=1', e.image, 'true');
    assert.equal(host.code, 125);
    assert.match(host.stderr, /sysctl "vm.swappiness" is not allowed/);
    const missing = await cli('run', '--rm', '--device', '/no/such/device', e.image, 'true');
    assert.equal(missing.code, 125, 'an engine error, not a missing command');
    assert.match(missing.stderr, /error gathering device information while adding custom device "\/no\/such\/device"/);
    const exposed = await cli('run', '-d', '--name', 'exposer', '--expose', '7000-7001', '-P', e.image, 'sleep', '1000');
    assert.equal(exposed.code, 0, exposed.stderr);
    assert.match((await cli('port', 'exposer')).stdout, /^7000\/tcp -> 0\.0\.0\.0:\d+\n7001\/tcp -> 0\.0\.0\.0:\d+\n$/);
    assert.equal((await cli('rm', '-f', 'exposer')).code, 0);
  });

  it('info counts containers and images; system df sizes them; system prune removes what is unused', async () => {
    const info = async () => JSON.parse((await cli('info', '--format', 'json')).stdout) as Record<string, number | string>;
    const before = await info();
    assert.equal((await cli('run', '--name', 'leftover', '--network', 'none', e.image, 'true')).code, 0);
    const after = await info();
    assert.equal(after.containersStopped, (before.containersStopped as number) + 1);
    assert.equal(after.containers, (before.containers as number) + 1);
    assert.equal(after.storageDriver, 'overlayfs');
    assert.ok((after.images as number) >= 1);
    assert.match((await cli('info')).stdout, /^ Containers: \d+\n  Running: \d+\n  Paused: \d+\n  Stopped: \d+$/m);
    const df = await cli('system', 'df');
    assert.equal(df.code, 0, df.stderr);
    assert.match(df.stdout, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+\d+\s+\d+\s+\S+\s+.*\nContainers\s+\d+/);
    const dfv = await cli('system', 'df', '-v');
    assert.match(dfv.stdout, /Containers space usage:[\s\S]*leftover/);
    const pruned = await cli('system', 'prune', '-f');
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /Deleted Containers:\n([0-9a-f]{64}\n)+/);
    assert.equal((await cli('inspect', 'leftover')).code, 1, 'the stopped container is gone');
    assert.equal((await cli('images', '-q')).stdout.trim().length > 0, true, 'images in no container kept without -a');
  });

  it('mounts the volumes of another container with --volumes-from', async () => {
    assert.equal((await cli('run', '--name', 'vol-owner', '--network', 'none', '-v', '/data', e.image, 'sh', '-c', 'echo shared > /data/f')).code, 0);
    const same = await cli('run', '--rm', '--network', 'none', '--volumes-from', 'vol-owner', e.image, 'cat', '/data/f');
    assert.equal(same.stdout, 'shared\n', same.stderr);
    const ro = await cli('run', '--rm', '--network', 'none', '--volumes-from', 'vol-owner:ro', e.image, 'sh', '-c', 'echo x > /data/g');
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    const missing = await cli('run', '--rm', '--volumes-from', 'no-such-owner', e.image, 'true');
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /No such container: no-such-owner/);
    // rm -v removes an anonymous volume once no container uses it, also from a container that got it through --volumes-from.
    assert.equal((await cli('create', '--name', 'vol-user', '--network', 'none', '--volumes-from', 'vol-owner', e.image, 'true')).code, 0);
    const volume = (JSON.parse((await cli('inspect', 'vol-owner')).stdout) as Array<{ Mounts: Array<{ Name?: string }> }>)[0].Mounts[0].Name ?? '';
    assert.match(volume, /^[0-9a-f]{64}$/);
    assert.equal((await cli('rm', '-v', 'vol-owner')).code, 0);
    assert.match((await cli('volume', 'ls', '-q')).stdout, new RegExp(volume), 'kept while vol-user mounts it');
    assert.equal((await cli('rm', '-v', 'vol-user')).code, 0);
    assert.doesNotMatch((await cli('volume', 'ls', '-q')).stdout, new RegExp(volume));
  });

  it("runs the image's HEALTHCHECK and the --health-* flags, showing the status in ps and inspect", async () => {
    const image = await e.push('healthy', busyboxImage([], { Cmd: ['sh'], Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ready'], Interval: 200e6, Retries: 2 } }));
    assert.equal((await cli('pull', image)).code, 0);
    const run = await cli('run', '-d', '--name', 'checked', '--network', 'none', image, 'sh', '-c', 'sleep 1; touch /tmp/ready; exec sleep 1000');
    assert.equal(run.code, 0, run.stderr);
    const status = async () => (await cli('ps', '--filter', 'name=checked', '--format', '{{.Status}}')).stdout.trim();
    await waitFor(async () => (await status()).endsWith('(healthy)'), 'healthy once /tmp/ready exists');
    assert.equal((await cli('exec', 'checked', 'rm', '/tmp/ready')).code, 0);
    await waitFor(async () => (await status()).endsWith('(unhealthy)'), 'unhealthy after two failures');
    const health = JSON.parse((await cli('inspect', '-f', '{{json .State.Health}}', 'checked')).stdout) as { Status: string; FailingStreak: number; Log: unknown[] };
    assert.equal(health.Status, 'unhealthy');
    assert.ok(health.FailingStreak >= 2);
    assert.ok(health.Log.length > 0 && health.Log.length <= 5);
    // --no-healthcheck drops the image's check; a flag-made check works without one in the image.
    assert.equal((await cli('run', '-d', '--name', 'unchecked', '--network', 'none', '--no-healthcheck', image, 'sleep', '1000')).code, 0);
    assert.equal((await cli('run', '-d', '--name', 'flagged', '--network', 'none', '--health-cmd', 'true', '--health-interval', '100ms', e.image, 'sleep', '1000')).code, 0);
    await waitFor(async () => (await cli('ps', '--filter', 'name=flagged', '--format', '{{.Status}}')).stdout.trim().endsWith('(healthy)'), 'flag-made check');
    assert.doesNotMatch((await cli('ps', '--filter', 'name=unchecked', '--format', '{{.Status}}')).stdout, /health/);
    assert.equal((await cli('ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}')).stdout, 'checked\n');
    assert.match((await cli('ps', '--filter', 'health=none', '--format', '{{.Names}}')).stdout, /unchecked/);
    assert.equal((await cli('rm', '-f', 'checked', 'unchecked', 'flagged')).code, 0);
    assert.equal((await cli('rmi', image)).code, 0);
  });

  it('lists a container\'s changes with diff and exports its file system', async () => {
    const run = await cli('run', '--name', 'changer', '--network', 'none', '-v', '/data', e.image, 'sh', '-c', 'mkdir -p /new/sub && echo x > /new/sub/f && rm /bin/cat && echo y >> /etc/passwd && echo v > /data/in-volume');
    assert.equal(run.code, 0, run.stderr);
    const diff = await cli('diff', 'changer');
    assert.equal(diff.code, 0, diff.stderr);
    assert.deepEqual(diff.stdout.trim().split('\n'), ['C /bin', 'D /bin/cat', 'A /data', 'C /etc', 'C /etc/passwd', 'A /new', 'A /new/sub', 'A /new/sub/f']);
    const out = path.join(tmp, 'changer.tar');
    assert.equal((await cli('export', '-o', out, 'changer')).code, 0);
    const names = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
    assert.ok(names.includes('new/sub/f') && names.includes('bin/busybox') && names.includes('etc/passwd'));
    assert.ok(!names.includes('bin/cat'), 'the deleted file is gone');
    assert.ok(!names.includes('data/in-volume'), 'volumes stay out of the export');
    assert.match(execFileSync('tar', ['-xOf', out, 'etc/passwd'], { encoding: 'utf8' }), /\ny\n$/);
    const size = (await cli('ps', '-a', '-s', '--filter', 'name=changer', '--format', '{{.Size}}')).stdout.trim();
    assert.match(size, /^\d+(\.\d+)?[kM]?B \(virtual \d+(\.\d+)?MB\)$/, 'the writable layer, then with the image under it');
    assert.equal((await cli('diff', 'no-such-container')).code, 1);
    assert.equal((await cli('rm', '-v', 'changer')).code, 0);
  });

  it('writes the container ID to --cidfile and refuses an existing one', async () => {
    const cidfile = path.join(tmp, 'cid');
    const run = await cli('run', '-d', '--cidfile', cidfile, '--network', 'none', e.image, 'sleep', '1000');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(readFileSync(cidfile, 'utf8'), run.stdout.trim());
    const before = (await cli('ps', '-aq')).stdout;
    const again = await cli('run', '--rm', '--cidfile', cidfile, e.image, 'true');
    assert.equal(again.code, 125);
    assert.match(again.stderr, /Container ID file found/);
    assert.equal((await cli('ps', '-aq')).stdout, before, 'no container made');
    assert.equal((await cli('rm', '-f', run.stdout.trim())).code, 0);
    rmSync(cidfile);
  });

  it('commits a container\'s changes as a new image that runs them', async () => {
    const run = await cli('run', '-d', '--name', 'to-commit', '--network', 'none', '-e', 'COMMITTED=yes', e.image, 'sh', '-c', 'mkdir -p /app && echo hello > /app/greeting && ln /app/greeting /app/again && rm /bin/cat && exec sleep 1000');
    assert.equal(run.code, 0, run.stderr);
    await waitFor(async () => (await cli('diff', 'to-commit')).stdout.includes('A /app/again'), 'the changes made');
    const commit = await cli('commit', '-m', 'add a greeting', '-c', 'CMD ["sh", "-c", "echo $COMMITTED; ls /app"]', 'to-commit', 'committed/app:v1');
    assert.equal(commit.code, 0, commit.stderr);
    assert.match(commit.stdout, /^sha256:[0-9a-f]{64}\n$/);
    assert.match((await cli('ps', '--filter', 'name=to-commit', '--format', '{{.Status}}')).stdout, /^Up /, 'running again after the commit paused it');
    const fromImage = await cli('run', '--rm', '--pull', 'never', '--network', 'none', 'committed/app:v1');
    assert.equal(fromImage.stdout, 'yes\nagain\ngreeting\n', fromImage.stderr);
    const inside = await cli('run', '--rm', '--pull', 'never', '--network', 'none', 'committed/app:v1', 'sh', '-c', 'test -e /bin/cat || echo deleted; stat -c %i /app/greeting /app/again | uniq | wc -l');
    assert.equal(inside.stdout, 'deleted\n1\n', 'the whiteout and the hard link survive the commit');
    assert.match((await cli('history', 'committed/app:v1')).stdout.split('\n')[1], /add a greeting/);
    assert.equal((await cli('rm', '-f', 'to-commit')).code, 0);
    assert.equal((await cli('rmi', 'committed/app:v1')).code, 0);
    assert.equal((await cli('commit', 'no-such-container')).code, 1);
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
    // DIR/. is DIR's contents, as with docker cp.
    assert.equal((await cli('cp', 'cp:/data/.', path.join(tmp, 'datacopy'))).code, 0);
    assert.equal(readFileSync(path.join(tmp, 'datacopy', 'in.txt'), 'utf8'), 'from host\n');
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
    // Bundles of containers without a record, as a create cut short leaves them: one with its rootfs still mounted.
    const stray = ['a', 'b'].map((c) => path.join(e.d.state, 'containers', 'default', c.repeat(64)));
    for (const dir of stray) {
      mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
      writeFileSync(path.join(dir, 'config.json'), '{}');
    }
    execFileSync('mount', ['-t', 'tmpfs', 'berth-test-stray', path.join(stray[1], 'rootfs')]);
    await new Promise((r) => setTimeout(r, 2000));
    await e.d.restart();
    for (const dir of stray) assert.equal(existsSync(dir), false, `stray bundle ${dir} removed at recovery`);
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
