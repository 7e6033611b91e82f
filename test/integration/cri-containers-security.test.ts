import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { rejectsWith } from '../helpers/cri.ts';
import { startCriPods, type CriPods } from '../helpers/cri-pods.ts';
import { cgroupsUnder } from '../helpers/leak-probe.ts';
import { busyboxImage } from '../helpers/image-builder.ts';
import { sh } from '../helpers/network.ts';
import { until } from '../helpers/tasks.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (runc, overlayfs, netns, CNI)' : undefined;

/** The image's users and groups: app (1000) is listed in the group extra (1500). */
const image = busyboxImage(
  [
    {
      files: [
        { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
        { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\nextra:x:1500:app\nnogroup:x:65534:\n' },
      ],
    },
  ],
  { Cmd: ['sh'] },
);

/**
 * The security context of CRI containers, bad input (with nothing left
 * behind), and restart safety, over cri.sock on a real berthd.
 */
describe('CRI: security context, bad input and restart safety of containers', { skip, timeout: 300_000 }, () => {
  let p: CriPods;
  let profiles: string;
  before(async () => {
    p = await startCriPods({ image });
    profiles = await mkdtemp(path.join(os.tmpdir(), 'berth-seccomp-'));
  });
  after(async () => {
    await p?.stop();
    if (profiles) await rm(profiles, { recursive: true, force: true });
  });

  const statusOf = async (id: string) => (await p.exec(id, ['cat', '/proc/self/status'])).stdout;
  const field = (status: string, name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1].trim();
  const sc = (security_context: object) => ({ linux: { security_context } });

  it('runs as run_as_user/run_as_group with supplemental groups merged with the image /etc/group; run_as_username', async () => {
    const pod = await p.runPod('users');
    const a = await p.container(pod, 'a', sc({ run_as_user: { value: 1000 }, run_as_group: { value: 2000 }, supplemental_groups: [3000] }), { start: true });
    const st = await statusOf(a);
    assert.equal(field(st, 'Uid')?.split(/\s+/)[0], '1000');
    assert.equal(field(st, 'Gid')?.split(/\s+/)[0], '2000');
    assert.deepEqual(field(st, 'Groups')?.split(/\s+/).sort(), ['1500', '3000']);
    const user = (await p.status(a)).status.user.linux;
    assert.deepEqual([user.uid, user.gid, [...user.supplemental_groups].sort()], ['1000', '2000', ['1500', '3000']]);
    const b = await p.container(pod, 'b', sc({ run_as_username: 'app' }), { start: true });
    assert.equal(field(await statusOf(b), 'Uid')?.split(/\s+/)[0], '1000');
    await rejectsWith(p.container(pod, 'c', sc({ run_as_group: { value: 5 } })), grpc.status.INVALID_ARGUMENT);
  });

  it('readonly_rootfs, no_new_privs, capabilities add/drop, masked and read-only paths', async () => {
    const pod = await p.runPod('secure');
    const id = await p.container(
      pod,
      'locked',
      sc({
        readonly_rootfs: true,
        no_new_privs: true,
        capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['NET_ADMIN', 'CHOWN'] },
        masked_paths: ['/proc/version'],
        readonly_paths: ['/var'],
      }),
      { start: true },
    );
    const st = await statusOf(id);
    assert.equal(field(st, 'NoNewPrivs'), '1');
    assert.equal(field(st, 'CapEff'), (BigInt(1) << 12n | 1n).toString(16).padStart(16, '0'), 'CAP_NET_ADMIN and CAP_CHOWN only');
    assert.match((await p.exec(id, ['sh', '-c', 'touch /x 2>&1'])).stdout, /Read-only file system/);
    assert.match((await p.exec(id, ['sh', '-c', 'touch /var/x 2>&1'])).stdout, /Read-only file system/);
    assert.equal((await p.exec(id, ['cat', '/proc/version'])).stdout, '');
    // Without masked_paths the defaults apply.
    const plain = await p.container(pod, 'plain', {}, { start: true });
    assert.notEqual((await p.exec(plain, ['cat', '/proc/version'])).stdout, '');
    assert.equal((await p.exec(plain, ['cat', '/proc/kcore'])).stdout, '');
    assert.equal(field(await statusOf(plain), 'NoNewPrivs'), '0');
  });

  it('privileged only in a privileged sandbox; seccomp RuntimeDefault, Unconfined (the default) and Localhost; apparmor names accepted', async () => {
    const pod = await p.runPod('seccomp');
    await rejectsWith(p.container(pod, 'priv', sc({ privileged: true })), grpc.status.INVALID_ARGUMENT);
    const privPod = await p.runPod('privileged', { linux: { security_context: { privileged: true } } });
    const priv = await p.container(privPod, 'priv', sc({ privileged: true }), { start: true });
    const pst = await statusOf(priv);
    assert.equal(field(pst, 'Seccomp'), '0');
    assert.ok(BigInt(`0x${field(pst, 'CapEff')}`) > BigInt('0xa80425fb'), 'more than the default capabilities');

    const none = await p.container(pod, 'none', {}, { start: true });
    assert.equal(field(await statusOf(none), 'Seccomp'), '0', 'no seccomp field: unconfined, as containerd');
    const def = await p.container(pod, 'def', sc({ seccomp: { profile_type: 'RuntimeDefault' } }), { start: true });
    assert.equal(field(await statusOf(def), 'Seccomp'), '2');
    const file = path.join(profiles, 'no-mkdir.json');
    await writeFile(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
    const local = await p.container(pod, 'local', sc({ seccomp: { profile_type: 'Localhost', localhost_ref: file } }), { start: true });
    assert.match((await p.exec(local, ['sh', '-c', 'mkdir /tmp/d 2>&1; echo $?'])).stdout, /Operation not permitted\n1\n/);
    assert.equal((await p.exec(local, ['sh', '-c', 'touch /tmp/f; echo $?'])).stdout, '0\n');
    const legacy = await p.container(pod, 'legacy', sc({ seccomp_profile_path: `localhost/${file}` }), { start: true });
    assert.match((await p.exec(legacy, ['sh', '-c', 'mkdir /tmp/d 2>&1'])).stdout, /Operation not permitted/);
    const aa = await p.container(pod, 'aa', sc({ apparmor: { profile_type: 'Localhost', localhost_ref: 'k8s-restricted' } }), { start: true });
    assert.equal((await p.status(aa)).status.state, 'CONTAINER_RUNNING');
  });

  it('applies resources and updates them on a running container', async () => {
    const pod = await p.runPod('res');
    // kubelet sends a hugepage limit for every page size the node has; a node without the hugetlb controller has none to apply.
    const hugepage_limits = [{ page_size: '2MB', limit: 0 }];
    const id = await p.container(pod, 'r', { linux: { resources: { cpu_period: 100000, cpu_quota: 50000, cpu_shares: 512, memory_limit_in_bytes: 64 << 20, oom_score_adj: 500, hugepage_limits } } }, { start: true });
    const pid = JSON.parse((await p.status(id, true)).info.info).pid;
    const mem = path.join('/sys/fs/cgroup/memory', cgroupOf(pid, 'memory'));
    const cpu = path.join('/sys/fs/cgroup/cpu', cgroupOf(pid, 'cpu'));
    assert.ok(mem.includes(p.cgroupParent), `${mem} under the configured parent`);
    assert.equal((await readFile(path.join(mem, 'memory.limit_in_bytes'), 'utf8')).trim(), String(64 << 20));
    assert.equal((await readFile(path.join(cpu, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000');
    assert.equal((await readFile(path.join(cpu, 'cpu.shares'), 'utf8')).trim(), '512');
    assert.equal((await readFile(`/proc/${pid}/oom_score_adj`, 'utf8')).trim(), '500');
    await p.cri.runtime('UpdateContainerResources', { container_id: id, linux: { memory_limit_in_bytes: 128 << 20, cpu_quota: 20000, cpu_period: 100000 } });
    assert.equal((await readFile(path.join(mem, 'memory.limit_in_bytes'), 'utf8')).trim(), String(128 << 20));
    assert.equal((await readFile(path.join(cpu, 'cpu.cfs_quota_us'), 'utf8')).trim(), '20000');
    const res = (await p.status(id)).status.resources.linux;
    assert.equal(res.memory_limit_in_bytes, String(128 << 20));
    // A container's oom_score_adj is never set below berthd's own (lowering needs CAP_SYS_RESOURCE).
    const own = Number((await readFile(`/proc/${p.e.d.proc.pid}/oom_score_adj`, 'utf8')).trim());
    const low = await p.container(pod, 'low', { linux: { resources: { oom_score_adj: -998 } } }, { start: true });
    const lowPid = JSON.parse((await p.status(low, true)).info.info).pid;
    assert.equal(Number((await readFile(`/proc/${lowPid}/oom_score_adj`, 'utf8')).trim()), Math.max(-998, own));
  });

  it('refuses bad input with the right code and a message naming it, leaving nothing behind', async () => {
    const pod = await p.runPod('bad');
    const stopped = await p.runPod('stopped');
    await p.cri.runtime('StopPodSandbox', { pod_sandbox_id: stopped.id });
    // Each snapshot has an fs directory (its layer), a level or two below the snapshotter's root.
    const snapshots = () => (readdirSync(path.join(p.e.d.root, 'snapshots'), { recursive: true }) as string[]).filter((f) => /^[^/]+\/[^/]+\/[^/]+\/fs$|^[^/]+\/[^/]+\/fs$/.test(f)).length;
    const veths = async () => (await sh('ip', ['-o', 'link', 'show', 'master', p.e.bridge])).stdout.split('\n').filter(Boolean).length;
    const before = { list: (await p.cri.runtime('ListContainers', {})).containers.length, snapshots: snapshots(), cgroups: (await cgroupsUnder(p.cgroupParent)).length, veths: await veths() };
    assert.ok(before.snapshots > 0 && before.cgroups > 0 && before.veths > 0, JSON.stringify(before));
    const cases: Array<[string, Promise<unknown>, grpc.status, RegExp]> = [
      ['no metadata', p.cri.runtime('CreateContainer', { pod_sandbox_id: pod.id, config: { image: { image: p.image } }, sandbox_config: pod.config }), grpc.status.INVALID_ARGUMENT, /metadata/],
      ['unknown sandbox', p.cri.runtime('CreateContainer', { pod_sandbox_id: 'f'.repeat(64), config: { metadata: { name: 'x' }, image: { image: p.image } } }), grpc.status.NOT_FOUND, /f{64}|sandbox/],
      ['stopped sandbox', p.container(stopped, 'x'), grpc.status.FAILED_PRECONDITION, new RegExp(stopped.id)],
      ['missing host path', p.container(pod, 'x', { mounts: [{ container_path: '/data', host_path: '/nonexistent/berth-test' }] }), grpc.status.INVALID_ARGUMENT, /mounts\[0\]\.host_path "\/nonexistent\/berth-test"/],
      ['unknown seccomp file', p.container(pod, 'x', sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/nonexistent/profile.json' } })), grpc.status.NOT_FOUND, /seccomp profile "\/nonexistent\/profile.json"/],
      ['unknown seccomp name', p.container(pod, 'x', sc({ seccomp_profile_path: 'bogus/profile' })), grpc.status.INVALID_ARGUMENT, /seccomp_profile_path.*bogus\/profile/],
      ['missing image', p.container(pod, 'x', { image: { image: 'example.invalid/none:1' } }), grpc.status.NOT_FOUND, /example\.invalid\/none:1/],
    ];
    for (const [what, call, code, message] of cases) {
      const err = await rejectsWith(call, code);
      assert.match(err.details, message, what);
    }
    // A second container of the same name and attempt in the same pod.
    await p.container(pod, 'dup');
    await rejectsWith(p.container(pod, 'dup'), grpc.status.ALREADY_EXISTS);
    const after = { list: (await p.cri.runtime('ListContainers', {})).containers.length - 1, snapshots: snapshots() - 1, cgroups: (await cgroupsUnder(p.cgroupParent)).length, veths: await veths() };
    assert.deepEqual(after, before);
  });

  it('survives kill -9 of berthd: listed with the right states, logs continue, exec, stop and remove work', async () => {
    const pod = await p.runPod('crash');
    const ticker = await p.container(pod, 'ticker', { command: ['sh', '-c', 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done'] }, { start: true });
    const done = await p.container(pod, 'done', { command: ['sh', '-c', 'exit 7'] }, { start: true });
    const created = await p.container(pod, 'created');
    // This one exits while berthd is down, once the host makes the file it waits for.
    const flagDir = await mkdtemp(path.join(os.tmpdir(), 'berth-crash-'));
    const later = await p.container(pod, 'later', { command: ['sh', '-c', 'while [ ! -e /flag/go ]; do sleep 0.05; done; exit 9'], mounts: [{ container_path: '/flag', host_path: flagDir }] }, { start: true });
    await until(async () => (await p.status(done)).status.state, (s) => s === 'CONTAINER_EXITED', 'the short container to exit');
    const log = path.join(p.logDir, 'crash', 'ticker', '0.log');
    await until(() => readFile(log, 'utf8').catch(() => ''), (t) => t.includes('tick 3'), 'ticks in the log');
    await p.e.d.kill();
    const lines = (await readFile(log, 'utf8')).split('\n').length;
    await writeFile(path.join(flagDir, 'go'), '');
    await p.e.d.restart();
    const state = async (id: string) => (await p.status(id)).status;
    assert.equal((await state(ticker)).state, 'CONTAINER_RUNNING');
    assert.deepEqual([(await state(done)).state, (await state(done)).exit_code], ['CONTAINER_EXITED', 7]);
    assert.equal((await state(created)).state, 'CONTAINER_CREATED');
    const exitedMeanwhile = await until(() => state(later), (st) => st.state === 'CONTAINER_EXITED', 'the exit that happened while berthd was down');
    assert.equal(exitedMeanwhile.exit_code, 9);
    assert.equal((await p.cri.runtime('PodSandboxStatus', { pod_sandbox_id: pod.id })).status.state, 'SANDBOX_READY');
    await until(() => readFile(log, 'utf8'), (t) => t.split('\n').length > lines + 3, 'the log to go on after the restart');
    assert.equal((await p.exec(ticker, ['echo', 'still here'])).stdout, 'still here\n');
    await p.cri.runtime('StartContainer', { container_id: created });
    assert.equal((await state(created)).state, 'CONTAINER_RUNNING');
    await p.cri.runtime('StopContainer', { container_id: ticker, timeout: 2 });
    assert.equal((await state(ticker)).state, 'CONTAINER_EXITED');
    for (const id of [ticker, done, created, later]) await p.cri.runtime('RemoveContainer', { container_id: id });
    await rm(flagDir, { recursive: true, force: true });
    assert.deepEqual((await p.cri.runtime('ListContainers', { filter: { pod_sandbox_id: pod.id } })).containers, []);
  });
});

/** The cgroup v1 path of `pid` in controller `ctl`. */
function cgroupOf(pid: number, ctl: string): string {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctls, p] = line.split(':');
    if (ctls?.split(',').includes(ctl)) return p;
  }
  throw new Error(`pid ${pid} has no ${ctl} cgroup`);
}
