import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { rejectsWith } from '../helpers/cri.ts';
import { startCriPods, type CriPods } from '../helpers/cri-pods.ts';
import { until } from '../helpers/tasks.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (runc, overlayfs, netns, CNI)' : undefined;

/** Stats of containers and pods, and the container event stream, over cri.sock on a real berthd. */
describe('CRI: container and pod stats, container events', { skip, timeout: 300_000 }, () => {
  let p: CriPods;
  before(async () => {
    p = await startCriPods();
  });
  after(async () => {
    await p?.stop();
  });

  it('ContainerStats and ListContainerStats: a container just started is listed with cpu, memory and its writable layer', async () => {
    const pod = await p.runPod('stats', { linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } } });
    const idle = await p.container(pod, 'idle', { labels: { role: 'idle' } }, { start: true });
    let s = (await p.cri.runtime('ContainerStats', { container_id: idle })).stats;
    assert.equal(s.attributes.id, idle);
    assert.equal(s.attributes.metadata.name, 'idle');
    assert.deepEqual(s.attributes.labels, { role: 'idle' });
    assert.ok(BigInt(s.cpu.timestamp) > 0n && BigInt(s.memory.timestamp) > 0n);
    assert.ok(Number(s.memory.working_set_bytes.value) > 0, JSON.stringify(s.memory));
    assert.ok(s.writable_layer && BigInt(s.writable_layer.timestamp) > 0n);

    // 40 MiB written into the writable layer and kept in memory (a tmpfs-less file in the container's page cache).
    const busy = await p.container(pod, 'busy', { command: ['sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=40 2>/dev/null; while :; do :; done'] }, { start: true });
    const list = async (filter: object = {}) => (await p.cri.runtime('ListContainerStats', { filter })).stats as any[];
    assert.deepEqual((await list()).map((x) => x.attributes.id).sort(), [idle, busy].sort());
    assert.deepEqual((await list({ id: busy.slice(0, 12) })).map((x) => x.attributes.id), [busy]);
    assert.deepEqual((await list({ label_selector: { role: 'idle' } })).map((x) => x.attributes.id), [idle]);
    assert.deepEqual((await list({ pod_sandbox_id: pod.id })).length, 2);
    assert.deepEqual(await list({ pod_sandbox_id: 'f'.repeat(12) }), []);
    // A busy loop uses some of a core (little of one on a loaded host: 0.5% is enough to tell it from none); the rate needs two sweeps.
    s = await until(
      async () => (await p.cri.runtime('ContainerStats', { container_id: busy })).stats,
      (x: any) => Number(x.cpu.usage_nano_cores?.value ?? 0) > 5_000_000 && Number(x.writable_layer?.used_bytes.value ?? 0) >= 40 << 20,
      'cpu usage of the busy loop and its 40 MiB file',
      60_000,
    );
    assert.ok(Number(s.cpu.usage_core_nano_seconds.value) > 0);
    await rejectsWith(p.cri.runtime('ContainerStats', { container_id: 'f'.repeat(64) }), grpc.status.NOT_FOUND);

    const ps = (await p.cri.runtime('PodSandboxStats', { pod_sandbox_id: pod.id })).stats;
    assert.equal(ps.attributes.id, pod.id);
    assert.equal(ps.attributes.metadata.name, 'stats');
    assert.ok(Number(ps.linux.cpu.usage_core_nano_seconds.value) >= Number(s.cpu.usage_core_nano_seconds.value));
    assert.ok(Number(ps.linux.memory.working_set_bytes.value) > 0);
    assert.equal(ps.linux.network.default_interface.name, 'eth0');
    assert.ok(Number(ps.linux.network.default_interface.tx_bytes.value) >= 0);
    assert.ok(Number(ps.linux.process.process_count.value) >= 3, JSON.stringify(ps.linux.process));
    assert.deepEqual(ps.linux.containers.map((c: any) => c.attributes.id).sort(), [idle, busy].sort());
    const all = (await p.cri.runtime('ListPodSandboxStats', { filter: {} })).stats as any[];
    assert.ok(all.some((x) => x.attributes.id === pod.id));
    assert.deepEqual((await p.cri.runtime('ListPodSandboxStats', { filter: { id: pod.id.slice(0, 8) } })).stats.length, 1);
    await rejectsWith(p.cri.runtime('PodSandboxStats', { pod_sandbox_id: 'f'.repeat(64) }), grpc.status.NOT_FOUND);
    await p.cri.runtime('StopContainer', { container_id: busy, timeout: 0 });
  });

  it('ListMetricDescriptors and ListPodSandboxMetrics: what is described is sent, with its labels', async () => {
    const descriptors = (await p.cri.runtime('ListMetricDescriptors', {})).descriptors as Array<{ name: string; label_keys: string[] }>;
    const keys = new Map(descriptors.map((d) => [d.name, d.label_keys]));
    assert.deepEqual(keys.get('container_cpu_usage_seconds_total'), ['pod', 'namespace', 'container', 'id', 'image']);
    assert.deepEqual(keys.get('container_network_receive_bytes_total'), ['pod', 'namespace', 'container', 'id', 'image', 'interface']);
    const pod = await p.runPod('metrics');
    const id = await p.container(pod, 'm', {}, { start: true });
    const all = (await p.cri.runtime('ListPodSandboxMetrics', {})).pod_metrics as any[];
    const mine = all.find((x) => x.pod_sandbox_id === pod.id);
    assert.ok(mine, 'the pod has metrics');
    const rx = mine.metrics.find((m: any) => m.name === 'container_network_receive_bytes_total');
    assert.deepEqual(rx.label_values, ['metrics', 'default', '', pod.id, '', 'eth0']);
    const cm = mine.container_metrics.find((c: any) => c.container_id === id);
    const byName = new Map(cm.metrics.map((m: any) => [m.name, m]));
    assert.deepEqual((byName.get('container_memory_working_set_bytes') as any).label_values, ['metrics', 'default', 'm', id, p.image]);
    assert.ok(Number((byName.get('container_memory_working_set_bytes') as any).value.value) > 0);
    assert.equal((byName.get('container_cpu_usage_seconds_total') as any).metric_type, 'COUNTER');
    for (const m of [...mine.metrics, ...cm.metrics]) {
      assert.ok(keys.has(m.name), `${m.name} is described`);
      assert.equal(m.label_values.length, keys.get(m.name)!.length, `${m.name} has a value for each label key`);
    }
  });

  /** A GetContainerEvents stream of its own (a raw client: the events come as the stream sends them), open once the server has answered with its headers. */
  const eventStream = () => {
    const def = protoLoader.loadSync(path.resolve(import.meta.dirname, '../../src/api/cri/api.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as any;
    const client = new pkg.runtime.v1.RuntimeService(`unix:${path.join(p.e.d.state, 'cri.sock')}`, grpc.credentials.createInsecure());
    const events: any[] = [];
    const stream = client.GetContainerEvents({});
    stream.on('data', (e: any) => events.push(e));
    stream.on('error', () => {});
    const opened = new Promise((r) => stream.once('metadata', r));
    const close = () => {
      stream.cancel();
      client.close();
    };
    return { events, opened, close };
  };

  it('GetContainerEvents streams created, started, stopped and deleted with the pod status', async () => {
    const { events, opened, close } = eventStream();
    try {
      await opened;
      const pod = await p.runPod('events');
      const id = await p.container(pod, 'ev', {}, { start: true });
      await p.cri.runtime('StopContainer', { container_id: id, timeout: 0 });
      await p.cri.runtime('RemoveContainer', { container_id: id });
      const mine = await until(() => events.filter((e) => e.container_id === id), (x) => x.length >= 4, 'four events of the container');
      assert.deepEqual(mine.map((e) => e.container_event_type), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
      for (const e of mine) {
        assert.ok(BigInt(e.created_at) > 0n);
        assert.equal(e.pod_sandbox_status.id, pod.id);
      }
      assert.equal(mine[1].containers_statuses.find((c: any) => c.id === id).state, 'CONTAINER_RUNNING');
      assert.equal(mine[3].containers_statuses.find((c: any) => c.id === id), undefined);
    } finally {
      close();
    }
  });

  it("GetContainerEvents streams a sandbox's own events under its id, as containerd 1.7: a stop and a pause that dies", async () => {
    const { events, opened, close } = eventStream();
    try {
      await opened;
      const pod = await p.runPod('sbevents');
      const c = await p.container(pod, 'c', {}, { start: true });
      await p.cri.runtime('StopPodSandbox', { pod_sandbox_id: pod.id });
      await p.cri.runtime('RemovePodSandbox', { pod_sandbox_id: pod.id });
      const mine = await until(() => events.filter((e) => e.container_id === pod.id), (x) => x.length >= 4, 'four events of the sandbox');
      assert.deepEqual(mine.map((e) => e.container_event_type), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
      for (const e of mine) assert.ok(BigInt(e.created_at) > 0n);
      assert.equal(mine[0].pod_sandbox_status.id, pod.id);
      assert.equal(mine[1].pod_sandbox_status.state, 'SANDBOX_READY');
      assert.deepEqual(mine[1].containers_statuses, []);
      assert.equal(mine[3].pod_sandbox_status, null);
      // The container's own events are still its own.
      assert.ok(events.some((e) => e.container_id === c && e.container_event_type === 'CONTAINER_STARTED_EVENT'));

      // A pause process that dies is reported as it happens, before anyone asks for the sandbox.
      const crashed = await p.runPod('sbcrash');
      const info = JSON.parse((await p.cri.runtime('PodSandboxStatus', { pod_sandbox_id: crashed.id, verbose: true })).info.info);
      process.kill(info.pid, 'SIGKILL');
      const stopped = await until(() => events.find((e) => e.container_id === crashed.id && e.container_event_type === 'CONTAINER_STOPPED_EVENT'), (x) => !!x, 'the dead pause process reported');
      assert.equal(stopped.pod_sandbox_status.state, 'SANDBOX_NOTREADY');
    } finally {
      close();
    }
  });
});
