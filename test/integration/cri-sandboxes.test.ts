import assert from 'node:assert/strict';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { criClient, rejectsWith } from '../helpers/cri.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { randomBridge, randomSubnet, sh } from '../helpers/network.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (runc, netns, CNI)' : undefined;

/**
 * Pod sandboxes through cri.sock on a real berthd: the pause process in its
 * own namespaces on the test's bridge, status and list, stop and remove
 * (twice each), and a sandbox that outlives a berthd crash. Traffic goes
 * only to the bridge this test creates.
 */
describe('CRI: pod sandboxes over cri.sock', { skip, timeout: 300_000 }, () => {
  let d: TestDaemon;
  let cri: ReturnType<typeof criClient>;
  const bridge = randomBridge();
  const subnet = randomSubnet();
  const prefix = subnet.replace(/\.0\/24$/, '.');
  const ids = new Set<string>();

  before(async () => {
    d = await startDaemon({ config: `version = 1\n[network]\nbridge = "${bridge}"\nsubnet = "${subnet}"\nfallback_dns = ["192.0.2.53"]\n` });
    cri = criClient(path.join(d.state, 'cri.sock'));
  });
  after(async () => {
    for (const id of ids) await cri?.runtime('RemovePodSandbox', { pod_sandbox_id: id }).catch(() => {});
    cri?.close();
    await d?.stop();
    await sh('ip', ['link', 'del', bridge]);
  });

  const config = (name: string, extra: object = {}) => ({
    metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
    hostname: `${name}-host`,
    labels: { app: name, tier: 'test' },
    annotations: { 'example.com/note': `pod ${name}` },
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    ...extra,
  });
  const run = async (name: string, extra?: object): Promise<string> => {
    const res = await cri.runtime('RunPodSandbox', { config: config(name, extra) });
    assert.match(res.pod_sandbox_id, /^[0-9a-f]{64}$/);
    ids.add(res.pod_sandbox_id);
    return res.pod_sandbox_id;
  };
  const status = async (id: string, verbose = true) => (await cri.runtime('PodSandboxStatus', { pod_sandbox_id: id, verbose })) as any;
  const pauseOf = async (id: string): Promise<number> => JSON.parse((await status(id)).info.info).pid;
  const netnsOf = async (id: string): Promise<string> => JSON.parse((await status(id)).info.info).netNamespacePath;
  const ns = (pid: number | 'self', type: string) => readlinkSync(`/proc/${pid}/ns/${type}`);
  const vethsOnBridge = async () => (await sh('ip', ['-o', 'link', 'show', 'master', bridge])).stdout.trim();

  let web: string;

  it('runs a sandbox: a pause process in its own namespaces, with its hostname and an address on the bridge that answers ping', async () => {
    web = await run('web');
    const st = (await status(web)).status;
    assert.equal(st.state, 'SANDBOX_READY');
    assert.ok(st.network.ip.startsWith(prefix), `${st.network.ip} on ${subnet}`);
    const pid = await pauseOf(web);
    assert.ok(pid > 0);
    assert.equal((await readFile(`/proc/${pid}/comm`, 'utf8')).trim(), 'pause');
    for (const type of ['net', 'ipc', 'uts', 'pid', 'mnt']) assert.notEqual(ns(pid, type), ns('self', type), `${type} namespace of its own`);
    const hostname = await sh('nsenter', ['-t', String(pid), '--uts', 'hostname']);
    assert.equal(hostname.stdout.trim(), 'web-host');
    // The pause process is pid 1 of the pod's pid namespace, where it reaps.
    const nspid = (await readFile(`/proc/${pid}/status`, 'utf8')).match(/^NSpid:\s+(.*)$/m)![1].trim().split(/\s+/);
    assert.equal(nspid.at(-1), '1');
    const netns = await netnsOf(web);
    assert.equal(ns(pid, 'net'), `net:[${statSync(netns).ino}]`, 'the pause process is in the netns the network service made');
    const addr = await sh('nsenter', [`--net=${netns}`, 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    assert.match(addr.stdout, new RegExp(`inet ${st.network.ip.replace(/\./g, '\\.')}/24`));
    assert.equal((await sh('/bin/busybox', ['ping', '-c1', '-W2', st.network.ip])).code, 0, 'the pod answers ping from the host');
  });

  it('reports status: metadata, created_at in ns, labels, annotations, namespace options', async () => {
    const before = BigInt(Date.now() - 600_000) * 1_000_000n;
    const st = (await status(web, false)).status;
    assert.deepEqual(st.metadata, { name: 'web', uid: 'uid-web', namespace: 'default', attempt: 0 });
    assert.ok(BigInt(st.created_at) > before && BigInt(st.created_at) <= BigInt(Date.now()) * 1_000_000n);
    assert.deepEqual(st.labels, { app: 'web', tier: 'test' });
    assert.deepEqual(st.annotations, { 'example.com/note': 'pod web' });
    assert.deepEqual(st.linux.namespaces.options, { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null });
    // An id prefix names the sandbox too, as in containerd.
    assert.equal((await status(web.slice(0, 12), false)).status.id, web);
  });

  it('refuses a second sandbox for the same pod metadata', async () => {
    await rejectsWith(cri.runtime('RunPodSandbox', { config: config('web') }), grpc.status.ALREADY_EXISTS);
    await rejectsWith(cri.runtime('RunPodSandbox', { config: { ...config('x'), metadata: { name: 'x' } } }), grpc.status.INVALID_ARGUMENT);
  });

  it('gives NOT_FOUND for the status of an unknown sandbox', async () => {
    await rejectsWith(status('f'.repeat(64)), grpc.status.NOT_FOUND);
  });

  let db: string;
  it('lists sandboxes, filtered by id prefix, state and labels', async () => {
    db = await run('db');
    const list = async (filter: object) => ((await cri.runtime('ListPodSandbox', { filter })).items as Array<{ id: string; state: string }>).map((s) => s.id).sort();
    assert.deepEqual(await list({}), [web, db].sort());
    assert.deepEqual(await list({ id: db.slice(0, 10) }), [db]);
    assert.deepEqual(await list({ label_selector: { app: 'web' } }), [web]);
    assert.deepEqual(await list({ label_selector: { tier: 'test' } }), [web, db].sort());
    assert.deepEqual(await list({ label_selector: { app: 'none' } }), []);
    assert.deepEqual(await list({ state: { state: 'SANDBOX_READY' } }), [web, db].sort());
    assert.deepEqual(await list({ state: { state: 'SANDBOX_NOTREADY' } }), []);
    const item = (await cri.runtime('ListPodSandbox', { filter: { id: web } })).items[0];
    assert.deepEqual(item.metadata, { name: 'web', uid: 'uid-web', namespace: 'default', attempt: 0 });
    assert.equal(item.state, 'SANDBOX_READY');
    assert.ok(BigInt(item.created_at) > 0n);
  });

  it('stops a sandbox: the pause process and its network go; stopping again is OK', async () => {
    const pid = await pauseOf(db);
    const netns = await netnsOf(db);
    const ip = (await status(db)).status.network.ip;
    const veths = (await vethsOnBridge()).split('\n').length;
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: db });
    assert.equal(existsSync(`/proc/${pid}`), false, 'the pause process is gone');
    assert.equal(existsSync(netns), false, 'the netns file is gone');
    assert.equal((await vethsOnBridge()).split('\n').filter(Boolean).length, veths - 1, 'its veth is gone');
    const allocated = (await sh('grep', ['-rl', db, path.join(d.root, 'network')])).stdout.trim();
    assert.equal(allocated, '', `no address allocation of ${ip} remains`);
    assert.equal((await status(db)).status.state, 'SANDBOX_NOTREADY');
    const lists = await cri.runtime('ListPodSandbox', { filter: { state: { state: 'SANDBOX_NOTREADY' } } });
    assert.deepEqual(lists.items.map((s: { id: string }) => s.id), [db]);
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: db });
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: 'f'.repeat(64) });
  });

  it('removes a sandbox, and removing again (or an unknown id) is OK', async () => {
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: db });
    await rejectsWith(status(db), grpc.status.NOT_FOUND);
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: db });
    assert.equal(existsSync(path.join(d.state, 'sandboxes', 'k8s.io', db)), false, 'its bundle is gone');
  });

  it('keeps a sandbox ready over a berthd crash, then stops and removes it', async () => {
    const pid = await pauseOf(web);
    const ip = (await status(web)).status.network.ip;
    cri.close();
    await d.kill();
    await d.restart();
    cri = criClient(path.join(d.state, 'cri.sock'));
    const st = (await status(web)).status;
    assert.equal(st.state, 'SANDBOX_READY');
    assert.equal(await pauseOf(web), pid, 'the same pause process');
    assert.equal(st.network.ip, ip);
    assert.equal((await sh('/bin/busybox', ['ping', '-c1', '-W2', ip])).code, 0, 'its network survived the restart');
    // A removal of a ready sandbox stops it first.
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: web });
    assert.equal(existsSync(`/proc/${pid}`), false);
    assert.equal(await vethsOnBridge(), '');
    assert.deepEqual((await cri.runtime('ListPodSandbox', {})).items, []);
  });

  it('marks a sandbox whose pause process died while berthd was down NOTREADY at start', async () => {
    const id = await run('crash');
    const pid = await pauseOf(id);
    cri.close();
    await d.kill();
    process.kill(pid, 'SIGKILL');
    await d.restart();
    cri = criClient(path.join(d.state, 'cri.sock'));
    assert.equal((await status(id)).status.state, 'SANDBOX_NOTREADY');
    assert.equal(await vethsOnBridge(), '', 'recovery gave its network back');
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: id });
  });
});

describe('CRI: pod sandboxes on the network cri.network names', { skip, timeout: 120_000 }, () => {
  let d: TestDaemon;
  let cri: ReturnType<typeof criClient>;
  const bridge = randomBridge();
  const podBridge = randomBridge();
  const podSubnet = randomSubnet();

  before(async () => {
    d = await startDaemon({ config: `version = 1\n[cri]\nnetwork = "pods"\n[network]\nbridge = "${bridge}"\nsubnet = "${randomSubnet()}"\nfallback_dns = ["192.0.2.53"]\n` });
    const made = await d.cli(['network', 'create', '--subnet', podSubnet, '-o', `com.docker.network.bridge.name=${podBridge}`, 'pods']);
    assert.equal(made.code, 0, made.stderr);
    cri = criClient(path.join(d.state, 'cri.sock'));
  });
  after(async () => {
    cri?.close();
    await d?.cli(['network', 'rm', 'pods']);
    await d?.stop();
    for (const b of [bridge, podBridge]) await sh('ip', ['link', 'del', b]);
  });

  it('attaches the pod to that network', async () => {
    const config = { metadata: { name: 'p', uid: 'uid-p', namespace: 'default', attempt: 1 }, hostname: 'p' };
    const { pod_sandbox_id: id } = await cri.runtime('RunPodSandbox', { config });
    try {
      const ip = (await cri.runtime('PodSandboxStatus', { pod_sandbox_id: id })).status.network.ip;
      assert.ok(ip.startsWith(podSubnet.replace(/\.0\/24$/, '.')), `${ip} on ${podSubnet}`);
      assert.notEqual((await sh('ip', ['-o', 'link', 'show', 'master', podBridge])).stdout.trim(), '', 'a veth on the pod network');
    } finally {
      await cri.runtime('RemovePodSandbox', { pod_sandbox_id: id });
    }
    assert.equal((await sh('ip', ['-o', 'link', 'show', 'master', podBridge])).stdout.trim(), '');
  });
});
