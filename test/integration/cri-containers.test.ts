import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { rejectsWith } from '../helpers/cri.ts';
import { startCriPods, type CriPods } from '../helpers/cri-pods.ts';
import { until } from '../helpers/tasks.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (runc, overlayfs, netns, CNI)' : undefined;

/**
 * Containers in pods through cri.sock on a real berthd: the lifecycle as
 * kubelet drives it, one engine (`berth -n k8s.io ps`), the sandbox's
 * namespaces and files, ExecSync, and the CRI log format.
 */
describe('CRI: containers in pods over cri.sock', { skip, timeout: 300_000 }, () => {
  let p: CriPods;
  before(async () => {
    p = await startCriPods();
  });
  after(async () => {
    await p?.stop();
  });

  const ns = (pid: number, type: string) => readlinkSync(`/proc/${pid}/ns/${type}`);
  const pauseOf = async (sb: string) => JSON.parse((await p.cri.runtime('PodSandboxStatus', { pod_sandbox_id: sb, verbose: true })).info.info).pid as number;
  const pidOf = async (id: string) => JSON.parse((await p.status(id, true)).info.info).pid as number;
  const list = async (filter: object = {}) => ((await p.cri.runtime('ListContainers', { filter })).containers as Array<{ id: string; state: string }>);

  it('creates, starts, lists, stops and removes a container; berth -n k8s.io ps shows it', async () => {
    const pod = await p.runPod('life');
    const id = await p.container(pod, 'app', {
      labels: { app: 'life' },
      annotations: { 'example.com/a': 'b' },
      linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } },
    });
    let st = (await p.status(id)).status;
    assert.equal(st.state, 'CONTAINER_CREATED');
    assert.deepEqual(st.metadata, { name: 'app', attempt: 0 });
    assert.deepEqual(st.labels, { app: 'life' });
    assert.deepEqual(st.annotations, { 'example.com/a': 'b' });
    // containerd's rules: the status names the image by its first tag and first repo digest.
    assert.match(st.image.image, /\/test\/cri-busybox:1$/);
    assert.match(st.image_ref, /\/test\/cri-busybox@sha256:[0-9a-f]{64}$/);
    assert.equal(st.image_id, p.image);
    assert.equal(st.stop_signal, 'RUNTIME_DEFAULT');
    assert.ok(BigInt(st.created_at) > 0n);
    assert.equal(st.started_at, '0');
    const ps = await p.e.d.cli(['-n', 'k8s.io', 'ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, new RegExp(`^${id} k8s_app_life_default_uid-life_0$`, 'm'));

    await p.cri.runtime('StartContainer', { container_id: id });
    st = (await p.status(id)).status;
    assert.equal(st.state, 'CONTAINER_RUNNING');
    assert.ok(BigInt(st.started_at) >= BigInt(st.created_at));
    await rejectsWith(p.cri.runtime('StartContainer', { container_id: id }), grpc.status.FAILED_PRECONDITION);

    const other = await p.container(pod, 'other', { labels: { app: 'other' } });
    assert.deepEqual((await list()).map((c) => c.id).sort(), [id, other].sort());
    assert.deepEqual((await list({ id: id.slice(0, 12) })).map((c) => c.id), [id]);
    assert.deepEqual((await list({ state: { state: 'CONTAINER_RUNNING' } })).map((c) => c.id), [id]);
    assert.deepEqual((await list({ state: { state: 'CONTAINER_CREATED' } })).map((c) => c.id), [other]);
    assert.deepEqual((await list({ label_selector: { app: 'other' } })).map((c) => c.id), [other]);
    assert.deepEqual((await list({ pod_sandbox_id: pod.id.slice(0, 10) })).length, 2);
    assert.deepEqual(await list({ pod_sandbox_id: 'f'.repeat(64) }), []);
    const item = (await list({ id }))[0] as any;
    assert.equal(item.pod_sandbox_id, pod.id);
    assert.equal(item.image_ref, p.image);

    // sleep as pid 1 of its own pid namespace ignores SIGTERM: the timeout ends it with SIGKILL.
    const t0 = Date.now();
    await p.cri.runtime('StopContainer', { container_id: id, timeout: 1 });
    assert.ok(Date.now() - t0 >= 900, 'the stop signal had its grace period');
    st = (await p.status(id)).status;
    assert.equal(st.state, 'CONTAINER_EXITED');
    assert.equal(st.exit_code, 137);
    assert.equal(st.reason, 'Error');
    assert.ok(BigInt(st.finished_at) >= BigInt(st.started_at));
    await p.cri.runtime('StopContainer', { container_id: id, timeout: 1 });
    await rejectsWith(p.cri.runtime('StartContainer', { container_id: id }), grpc.status.FAILED_PRECONDITION);

    await p.cri.runtime('RemoveContainer', { container_id: id });
    await p.cri.runtime('RemoveContainer', { container_id: id });
    await rejectsWith(p.status(id), grpc.status.NOT_FOUND);
    await rejectsWith(p.cri.runtime('StopContainer', { container_id: id, timeout: 0 }), grpc.status.NOT_FOUND);
    assert.deepEqual((await list()).map((c) => c.id), [other]);
  });

  it('a start that fails leaves the container exited with reason StartError, and removable', async () => {
    const pod = await p.runPod('startfail');
    const id = await p.container(pod, 'bad', { command: ['/no/such/binary'] });
    const err = await p.cri.runtime('StartContainer', { container_id: id }).then(() => undefined, (e: grpc.ServiceError) => e);
    assert.ok(err, 'the start failed');
    assert.match(err.details, /no\/such\/binary/);
    const st = (await p.status(id)).status;
    assert.deepEqual([st.state, st.reason, st.exit_code], ['CONTAINER_EXITED', 'StartError', 127]);
    assert.match(st.message, /no\/such\/binary/);
    assert.ok(BigInt(st.finished_at) > 0n);
    await rejectsWith(p.cri.runtime('StartContainer', { container_id: id }), grpc.status.FAILED_PRECONDITION);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!mounts.includes(id), 'no rootfs mount is left');
    await p.cri.runtime('RemoveContainer', { container_id: id });
    await rejectsWith(p.status(id), grpc.status.NOT_FOUND);
  });

  it('joins the sandbox: its network, ipc and uts namespaces, hostname, hosts and resolv.conf; pid per the namespace option', async () => {
    const pod = await p.runPod('joins');
    const pause = await pauseOf(pod.id);
    const own = await p.container(pod, 'own', { linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } } }, { start: true });
    const shared = await p.container(pod, 'shared', { linux: { security_context: { namespace_options: { pid: 'POD' } } } }, { start: true });
    for (const id of [own, shared]) {
      const pid = await pidOf(id);
      for (const type of ['net', 'ipc', 'uts']) assert.equal(ns(pid, type), ns(pause, type), `${type} namespace of the pod`);
      assert.notEqual(ns(pid, 'mnt'), ns(pause, 'mnt'));
      assert.equal((await p.exec(id, ['hostname'])).stdout.trim(), 'joins-host');
      assert.equal((await p.exec(id, ['cat', '/etc/hostname'])).stdout.trim(), 'joins-host');
      const ip = (await p.cri.runtime('PodSandboxStatus', { pod_sandbox_id: pod.id })).status.network.ip;
      assert.match((await p.exec(id, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`));
      assert.match((await p.exec(id, ['cat', '/etc/resolv.conf'])).stdout, /nameserver/);
      assert.match((await p.exec(id, ['cat', '/etc/hosts'])).stdout, /localhost/);
    }
    assert.notEqual(ns(await pidOf(own), 'pid'), ns(pause, 'pid'));
    assert.equal(ns(await pidOf(shared), 'pid'), ns(pause, 'pid'));
    assert.equal((await p.exec(own, ['cat', '/proc/1/comm'])).stdout.trim(), 'sleep');
    assert.equal((await p.exec(shared, ['cat', '/proc/1/comm'])).stdout.trim(), 'pause');
    // TARGET: another container's pid namespace (kubectl debug --target), which must be running and in the pod.
    const debug = await p.container(pod, 'debug', { linux: { security_context: { namespace_options: { pid: 'TARGET', target_id: own } } } }, { start: true });
    assert.equal(ns(await pidOf(debug), 'pid'), ns(await pidOf(own), 'pid'));
    assert.equal((await p.exec(debug, ['cat', '/proc/1/comm'])).stdout.trim(), 'sleep');
    const other = await p.runPod('joins-other');
    await rejectsWith(p.container(other, 'debug', { linux: { security_context: { namespace_options: { pid: 'TARGET', target_id: own } } } }), grpc.status.INVALID_ARGUMENT);
    // The node's ipc namespace.
    const nodeIpc = await p.container(pod, 'nodeipc', { linux: { security_context: { namespace_options: { pid: 'CONTAINER', ipc: 'NODE' } } } }, { start: true });
    assert.equal(ns(await pidOf(nodeIpc), 'ipc'), readlinkSync('/proc/self/ns/ipc'));
  });

  it('takes command over the image entrypoint, args, env, working dir and a read-only host mount', async () => {
    const pod = await p.runPod('cfg');
    const id = await p.container(
      pod,
      'c',
      {
        command: ['sh', '-c'],
        args: ['echo "$GREETING from $(pwd)"; cat /data/file; touch /data/x 2>&1; sleep 1000'],
        envs: [{ key: 'GREETING', value: 'hello' }],
        working_dir: '/tmp',
        mounts: [{ container_path: '/data', host_path: p.logDir, readonly: true }],
      },
      { start: true },
    );
    await import('node:fs/promises').then((fs) => fs.writeFile(path.join(p.logDir, 'file'), 'from the host\n'));
    const log = path.join(p.logDir, 'cfg', 'c', '0.log');
    const text = await until(() => readFile(log, 'utf8').catch(() => ''), (t) => /Read-only file system/.test(t), 'the container output in its log');
    assert.match(text, /stdout F hello from \/tmp\n/);
    const st = (await p.status(id)).status;
    assert.deepEqual(st.mounts.map((m: any) => [m.container_path, m.host_path, m.readonly, m.propagation]), [['/data', p.logDir, true, 'PROPAGATION_PRIVATE']]);
    assert.equal(st.log_path, log);
    // One engine: berth's own logs command reads the CRI log.
    const logs = await p.e.d.cli(['-n', 'k8s.io', 'logs', id]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^hello from \/tmp\n/);
  });

  it('creates the devices asked for, with their cgroup permissions', async () => {
    const pod = await p.runPod('devices');
    // /dev/loop-control is not among the devices every container may use: only the mapping's 'r' allows it.
    const id = await p.container(pod, 'd', { devices: [{ host_path: '/dev/loop-control', container_path: '/dev/xloop', permissions: 'r' }] }, { start: true });
    assert.match((await p.exec(id, ['ls', '-l', '/dev/xloop'])).stdout, /^c.* 10,\s+237 /);
    assert.equal((await p.exec(id, ['sh', '-c', ': < /dev/xloop'])).exit_code, 0, 'opened for reading');
    assert.match((await p.exec(id, ['sh', '-c', ': > /dev/xloop'])).stderr, /Operation not permitted/, 'not for writing');
  });

  it('propagates mounts both ways with BIDIRECTIONAL and from the host only with HOST_TO_CONTAINER', async () => {
    const fs = await import('node:fs/promises');
    const { sh } = await import('../helpers/network.ts');
    const pod = await p.runPod('prop', { linux: { security_context: { privileged: true, namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } } });
    const base = await fs.mkdtemp(path.join(p.logDir, 'prop-'));
    const src = path.join(base, 'src');
    const shared = path.join(base, 'shared');
    await fs.mkdir(src);
    await fs.writeFile(path.join(src, 'flag'), 'x');
    await fs.mkdir(path.join(shared, 'fromhost'), { recursive: true });
    const mounted: string[] = [];
    try {
      assert.equal((await sh('mount', ['--bind', shared, shared])).code, 0);
      mounted.push(shared);
      assert.equal((await sh('mount', ['--make-rshared', shared])).code, 0);
      const privileged = { linux: { security_context: { privileged: true } } };
      const both = await p.container(pod, 'both', { ...privileged, mounts: [{ container_path: '/m', host_path: shared, propagation: 'PROPAGATION_BIDIRECTIONAL' }] }, { start: true });
      const slave = await p.container(pod, 'slave', { ...privileged, mounts: [{ container_path: '/m', host_path: shared, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }] }, { start: true });
      // A mount made on the host after the start reaches both containers.
      assert.equal((await sh('mount', ['--bind', src, path.join(shared, 'fromhost')])).code, 0);
      mounted.unshift(path.join(shared, 'fromhost'));
      for (const id of [both, slave]) assert.equal((await p.exec(id, ['ls', '/m/fromhost'])).stdout.trim(), 'flag');
      // A mount made in the bidirectional container reaches the host; one in the slave container does not.
      await fs.mkdir(path.join(shared, 'fromboth'));
      await fs.mkdir(path.join(shared, 'fromslave'));
      assert.equal((await p.exec(both, ['mount', '--bind', '/etc', '/m/fromboth'])).exit_code, 0);
      mounted.unshift(path.join(shared, 'fromboth'));
      assert.equal((await p.exec(slave, ['mount', '--bind', '/etc', '/m/fromslave'])).exit_code, 0);
      assert.ok((await fs.readdir(path.join(shared, 'fromboth'))).includes('passwd'));
      assert.deepEqual(await fs.readdir(path.join(shared, 'fromslave')), []);
      for (const id of [both, slave]) await p.cri.runtime('RemoveContainer', { container_id: id });
    } finally {
      for (const m of mounted) await sh('umount', ['-l', m]);
      await fs.rm(base, { recursive: true, force: true });
    }
  });

  it('writes the CRI log format: RFC 3339 nanosecond times, streams, F for full lines and P for parts of long ones; ReopenContainerLog', async () => {
    const pod = await p.runPod('logs');
    const id = await p.container(
      pod,
      'w',
      { command: ['sh', '-c', 'echo out; echo err >&2; head -c 20000 /dev/zero | tr "\\0" a; echo; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after-reopen; sleep 1000'] },
      { start: true },
    );
    const log = path.join(p.logDir, 'logs', 'w', '0.log');
    const lines = (await until(() => readFile(log, 'utf8').catch(() => ''), (t) => t.split('\n').length >= 5, 'four log lines')).split('\n').filter(Boolean);
    const re = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$/;
    const parsed = lines.map((l) => re.exec(l));
    assert.ok(parsed.every(Boolean), lines.map((l) => l.slice(0, 80)).join('\n'));
    const rows = parsed.map((m) => [m![2], m![3], m![4].length > 20 ? `a*${m![4].length}` : m![4]]);
    assert.deepEqual(rows.filter((r) => r[0] === 'stderr'), [['stderr', 'F', 'err']]);
    assert.deepEqual(rows.filter((r) => r[0] === 'stdout'), [['stdout', 'F', 'out'], ['stdout', 'P', 'a*16384'], ['stdout', 'F', `a*${20000 - 16384}`]]);
    // kubelet rotates by renaming the file, then asks for a reopen.
    await import('node:fs/promises').then((fs) => fs.rename(log, `${log}.1`));
    await p.cri.runtime('ReopenContainerLog', { container_id: id });
    await p.exec(id, ['touch', '/tmp/go']);
    const fresh = await until(() => readFile(log, 'utf8').catch(() => ''), (t) => t.includes('after-reopen'), 'output in the reopened log');
    assert.match(fresh, /stdout F after-reopen\n$/);
    await p.cri.runtime('StopContainer', { container_id: id, timeout: 0 });
    await rejectsWith(p.cri.runtime('ReopenContainerLog', { container_id: id }), grpc.status.FAILED_PRECONDITION);
  });

  it('ExecSync: output, exit code, a timeout that answers DEADLINE_EXCEEDED, and FAILED_PRECONDITION once stopped', async () => {
    const pod = await p.runPod('exec');
    const id = await p.container(pod, 'e', {}, { start: true });
    const r = await p.exec(id, ['sh', '-c', 'echo to-out; echo to-err >&2; exit 3']);
    assert.deepEqual(r, { stdout: 'to-out\n', stderr: 'to-err\n', exit_code: 3 });
    const t0 = Date.now();
    await rejectsWith(p.exec(id, ['sleep', '30'], 1), grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 < 20_000);
    assert.equal((await p.exec(id, ['true'])).exit_code, 0, 'the container still runs');
    await rejectsWith(p.exec(id, []), grpc.status.INVALID_ARGUMENT);
    await p.cri.runtime('StopContainer', { container_id: id, timeout: 0 });
    await rejectsWith(p.exec(id, ['true']), grpc.status.FAILED_PRECONDITION);
  });

  it('stopping a sandbox stops its containers; removing it removes them', async () => {
    const pod = await p.runPod('gone');
    const a = await p.container(pod, 'a', {}, { start: true });
    const b = await p.container(pod, 'b');
    await p.cri.runtime('StopPodSandbox', { pod_sandbox_id: pod.id });
    assert.equal((await p.status(a)).status.state, 'CONTAINER_EXITED');
    await rejectsWith(p.container(pod, 'c'), grpc.status.FAILED_PRECONDITION);
    await rejectsWith(p.cri.runtime('StartContainer', { container_id: b }), grpc.status.FAILED_PRECONDITION);
    await p.cri.runtime('RemovePodSandbox', { pod_sandbox_id: pod.id });
    await rejectsWith(p.status(a), grpc.status.NOT_FOUND);
    await rejectsWith(p.status(b), grpc.status.NOT_FOUND);
    const ps = await p.e.d.cli(['-n', 'k8s.io', 'ps', '-aq', '--no-trunc']);
    assert.ok(!ps.stdout.includes(a) && !ps.stdout.includes(b), ps.stdout);
  });
});
