import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { criClient, rejectsWith } from '../helpers/cri.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { randomBridge, randomSubnet, serveIn, sh, tcpRead, udpAsk, udpEchoIn } from '../helpers/network.ts';
import { freePort } from '../helpers/registry.ts';
import { removeCgroupParent } from '../helpers/leak-probe.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (runc, netns, CNI, iptables)' : undefined;

/**
 * The settings of a pod sandbox config beyond its metadata, on a real
 * berthd: hostPort mappings reached from the host, sysctls seen inside the
 * pod, a privileged pod, the security context (users, groups, seccomp), the
 * log directory, the cgroup parent, declared resources, the runtime config,
 * and bad input that leaves nothing behind. Traffic goes only to loopback
 * and the bridge this test makes.
 */
describe('CRI: pod sandbox settings', { skip, timeout: 300_000 }, () => {
  let d: TestDaemon;
  let cri: ReturnType<typeof criClient>;
  let tmp: string;
  const bridge = randomBridge();
  const subnet = randomSubnet();
  const ids = new Set<string>();
  const cgroupParent = `/berth-test-pods-${process.pid}`;

  before(async () => {
    d = await startDaemon({ config: `version = 1\n[network]\nbridge = "${bridge}"\nsubnet = "${subnet}"\nfallback_dns = ["192.0.2.53"]\n` });
    cri = criClient(path.join(d.state, 'cri.sock'));
    tmp = await mkdtemp(path.join(tmpdir(), 'berth-cri-pods-'));
  });
  after(async () => {
    for (const id of ids) await cri?.runtime('RemovePodSandbox', { pod_sandbox_id: id }).catch(() => {});
    cri?.close();
    await d?.stop();
    await sh('ip', ['link', 'del', bridge]);
    await removeCgroupParent(cgroupParent);
    await rm(tmp, { recursive: true, force: true });
  });

  let n = 0;
  const config = (extra: Record<string, unknown> = {}) => {
    const name = `pod${n++}`;
    return { metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 }, hostname: name, ...extra };
  };
  const run = async (cfg: object): Promise<string> => {
    const { pod_sandbox_id: id } = await cri.runtime('RunPodSandbox', { config: cfg });
    ids.add(id);
    return id;
  };
  const remove = async (id: string) => {
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: id });
    ids.delete(id);
  };
  const info = async (id: string) => JSON.parse((await cri.runtime('PodSandboxStatus', { pod_sandbox_id: id, verbose: true })).info.info);
  const procStatus = (pid: number, field: string) => readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s*(.*)$`, 'm'))![1]!.trim();
  const natRulesFor = async (port: number) => (await sh('iptables-save', ['-t', 'nat'])).stdout.split('\n').filter((l) => l.includes(`--dport ${port}`) || l.includes(`dports ${port}`));
  const vethsOnBridge = async () => (await sh('ip', ['-o', 'link', 'show', 'master', bridge])).stdout.trim();
  /** Nothing of a refused sandbox remains: no record, no pause task, no veth, no NAT rule. */
  const nothingLeft = async (port?: number) => {
    assert.deepEqual((await cri.runtime('ListPodSandbox', {})).items.filter((s: { id: string }) => !ids.has(s.id)), []);
    assert.equal((await d.cli(['-n', 'k8s.io', 'ps', '-aq'])).stdout.trim(), '');
    if (port) assert.deepEqual(await natRulesFor(port), []);
  };

  it('answers RuntimeConfig with the cgroupfs driver and keeps the pod CIDR of UpdateRuntimeConfig', async () => {
    assert.deepEqual(await cri.runtime('RuntimeConfig', {}), { linux: { cgroup_driver: 'CGROUPFS' } });
    await cri.runtime('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.88.0.0/24,fd00:10::/64' } } });
    const st = await cri.runtime('Status', { verbose: true });
    assert.deepEqual(JSON.parse(st.info.config), { cgroupDriver: 'cgroupfs', podCIDRs: ['10.88.0.0/24', 'fd00:10::/64'] });
    await cri.runtime('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '' } } });
    await cri.runtime('UpdateRuntimeConfig', {});
    const bad = await rejectsWith(cri.runtime('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.88.0.0/33' } } }), grpc.status.INVALID_ARGUMENT);
    assert.match(bad.details, /pod_cidr/);
    assert.deepEqual(JSON.parse((await cri.runtime('Status', { verbose: true })).info.config).podCIDRs, ['10.88.0.0/24', 'fd00:10::/64']);
  });

  it('publishes hostPort mappings (TCP and UDP, on a host_ip) and takes them back at stop', async () => {
    const [tcpPort, udpPort] = [await freePort(), await freePort()];
    const id = await run(
      config({
        port_mappings: [
          { protocol: 'TCP', container_port: 8080, host_port: tcpPort, host_ip: '127.0.0.1' },
          { protocol: 'UDP', container_port: 5353, host_port: udpPort },
          // hostPort 0 declares a container port and publishes nothing.
          { protocol: 'TCP', container_port: 9090, host_port: 0 },
        ],
      }),
    );
    const i = await info(id);
    assert.deepEqual(i.portMappings, [
      { hostIp: '127.0.0.1', hostPort: tcpPort, containerPort: 8080, protocol: 'tcp' },
      { hostPort: udpPort, containerPort: 5353, protocol: 'udp' },
    ]);
    const tcp = await serveIn(i.netNamespacePath, 8080, 'the pod');
    const udp = await udpEchoIn(i.netNamespacePath, 5353);
    try {
      assert.equal(await tcpRead('127.0.0.1', tcpPort), 'hello from the pod');
      assert.equal(await udpAsk('127.0.0.1', udpPort, 'ping'), 'echo:ping');
      // The same host port for another pod is refused, and that pod leaves nothing behind.
      const veths = await vethsOnBridge();
      const taken = await rejectsWith(
        cri.runtime('RunPodSandbox', { config: config({ port_mappings: [{ container_port: 80, host_port: tcpPort, host_ip: '127.0.0.1' }] }) }),
        grpc.status.FAILED_PRECONDITION,
      );
      assert.match(taken.details, new RegExp(String(tcpPort)));
      assert.equal(await vethsOnBridge(), veths);
      await nothingLeft();
    } finally {
      await tcp.stop();
      await udp.stop();
    }
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: id });
    assert.deepEqual(await natRulesFor(tcpPort), [], 'no NAT rule for the TCP host port after stop');
    await assert.rejects(tcpRead('127.0.0.1', tcpPort));
    await remove(id);
  });

  it("keeps a pod's host port over a berthd crash, and stop still takes it back", async () => {
    const port = await freePort();
    const id = await run(config({ port_mappings: [{ container_port: 8080, host_port: port, host_ip: '127.0.0.1' }] }));
    const server = await serveIn((await info(id)).netNamespacePath, 8080, 'the pod');
    try {
      assert.equal(await tcpRead('127.0.0.1', port), 'hello from the pod');
      cri.close();
      await d.kill();
      await d.restart();
      cri = criClient(path.join(d.state, 'cri.sock'));
      assert.equal((await cri.runtime('PodSandboxStatus', { pod_sandbox_id: id })).status.state, 'SANDBOX_READY');
      assert.equal(await tcpRead('127.0.0.1', port), 'hello from the pod', 'the port answers after the restart');
      assert.deepEqual((await info(id)).portMappings, [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 8080, protocol: 'tcp' }]);
    } finally {
      await server.stop();
    }
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: id });
    assert.deepEqual(await natRulesFor(port), []);
    await remove(id);
  });

  it('sets namespaced sysctls in the pod and refuses the others', async () => {
    const id = await run(config({ linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80', 'kernel.shm_rmid_forced': '1', 'net.ipv4.ping_group_range': '0 2147483647' } } }));
    const i = await info(id);
    const inPod = async (ns: string, file: string) => (await sh('nsenter', [`--target=${i.pid}`, `--${ns}`, 'cat', file])).stdout.trim();
    assert.equal(await inPod('net', '/proc/sys/net/ipv4/ip_unprivileged_port_start'), '80');
    assert.equal(await inPod('net', '/proc/sys/net/ipv4/ping_group_range'), '0\t2147483647');
    assert.equal(await inPod('ipc', '/proc/sys/kernel/shm_rmid_forced'), '1');
    assert.deepEqual(i.sysctls, { 'net.ipv4.ip_unprivileged_port_start': '80', 'kernel.shm_rmid_forced': '1', 'net.ipv4.ping_group_range': '0 2147483647' });
    assert.equal((await readFile('/proc/sys/kernel/shm_rmid_forced', 'utf8')).trim(), '0', "the host's value is untouched");
    await remove(id);

    const host = await rejectsWith(cri.runtime('RunPodSandbox', { config: config({ linux: { sysctls: { 'kernel.pid_max': '4096' } } }) }), grpc.status.INVALID_ARGUMENT);
    assert.match(host.details, /kernel\.pid_max/);
    const hostNet = await rejectsWith(
      cri.runtime('RunPodSandbox', {
        config: config({ linux: { sysctls: { 'net.ipv4.ip_forward': '1' }, security_context: { namespace_options: { network: 'NODE' } } } }),
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.match(hostNet.details, /net\.ipv4\.ip_forward/);
    await nothingLeft();
  });

  it('runs a privileged pod with every capability and no seccomp; an unprivileged one has the default profile', async () => {
    const priv = await run(config({ linux: { security_context: { privileged: true } } }));
    const plain = await run(config());
    const [pp, pl] = [(await info(priv)).pid, (await info(plain)).pid];
    assert.equal(procStatus(pp, 'CapEff'), procStatus(process.pid, 'CapEff'), "berthd's capabilities");
    assert.equal(procStatus(pp, 'Seccomp'), '0');
    assert.equal((await info(priv)).privileged, true);
    assert.notEqual(procStatus(pl, 'CapEff'), procStatus(process.pid, 'CapEff'));
    assert.equal(procStatus(pl, 'Seccomp'), '2');
    assert.equal((await info(plain)).seccomp, 'runtime/default');
    await remove(priv);
    await remove(plain);
  });

  it('applies the security context: users, supplemental groups, seccomp Unconfined and Localhost, the node IPC namespace', async () => {
    const id = await run(
      config({
        linux: {
          security_context: {
            run_as_user: { value: 65534 },
            run_as_group: { value: 65533 },
            supplemental_groups: [1234, 5678],
            readonly_rootfs: true,
            seccomp: { profile_type: 'Unconfined' },
            namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'NODE' },
          },
        },
      }),
    );
    const pid = (await info(id)).pid;
    assert.equal(procStatus(pid, 'Uid').split(/\s+/)[0], '65534');
    assert.equal(procStatus(pid, 'Gid').split(/\s+/)[0], '65533');
    assert.deepEqual(procStatus(pid, 'Groups').split(/\s+/), ['1234', '5678']);
    assert.equal(procStatus(pid, 'Seccomp'), '0');
    const { readlinkSync } = await import('node:fs');
    assert.equal(readlinkSync(`/proc/${pid}/ns/ipc`), readlinkSync('/proc/self/ns/ipc'), "the node's IPC namespace");
    await remove(id);

    const profile = path.join(tmp, 'profile.json');
    await writeFile(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
    const local = await run(config({ linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: profile } } } }));
    const li = await info(local);
    assert.equal(procStatus(li.pid, 'Seccomp'), '2');
    assert.equal(li.seccomp, `localhost/${profile}`);
    await remove(local);

    const missing = await rejectsWith(
      cri.runtime('RunPodSandbox', { config: config({ linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: path.join(tmp, 'none.json') } } } }) }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.match(missing.details, /none\.json/);
    await writeFile(path.join(tmp, 'bad.json'), '{"defaultAction": 7}');
    await rejectsWith(
      cri.runtime('RunPodSandbox', { config: config({ linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: path.join(tmp, 'bad.json') } } } }) }),
      grpc.status.INVALID_ARGUMENT,
    );
    await nothingLeft();
  });

  it('keeps the log directory (made if missing), the cgroup parent and the declared resources, and updates them on a resize', async () => {
    const logDir = path.join(tmp, 'logs', 'default_web_uid');
    const id = await run(
      config({
        log_directory: logDir,
        linux: {
          cgroup_parent: cgroupParent,
          overhead: { cpu_shares: 10, memory_limit_in_bytes: 1 << 20 },
          resources: { cpu_period: 100000, cpu_quota: 50000, memory_limit_in_bytes: 64 << 20 },
        },
      }),
    );
    const i = await info(id);
    assert.equal(i.logDirectory, logDir);
    assert.ok(existsSync(logDir), 'the log directory exists');
    assert.equal(i.cgroupParent, cgroupParent);
    assert.deepEqual(i.overhead, { cpuShares: 10, memoryLimitInBytes: 1 << 20 });
    assert.deepEqual(i.resources, { cpuPeriod: 100000, cpuQuota: 50000, memoryLimitInBytes: 64 << 20 });
    const cgroup = readFileSync(`/proc/${i.pid}/cgroup`, 'utf8');
    assert.match(cgroup, new RegExp(`memory:${cgroupParent}/${id}$`, 'm'), 'the pause process is under the cgroup parent');
    const spec = JSON.parse(await readFile(path.join(d.state, 'sandboxes', 'k8s.io', id, 'config.json'), 'utf8'));
    assert.equal(spec.annotations['io.kubernetes.cri.sandbox-memory'], String(64 << 20));
    assert.equal(spec.annotations['io.kubernetes.cri.sandbox-log-directory'], logDir);
    // An in-place resize: the new values are kept, a field left out keeps its value.
    await cri.runtime('UpdatePodSandboxResources', { pod_sandbox_id: id, resources: { cpu_period: 100000, cpu_quota: 80000, memory_limit_in_bytes: 128 << 20 } });
    const resized = await info(id);
    assert.deepEqual(resized.resources, { cpuPeriod: 100000, cpuQuota: 80000, memoryLimitInBytes: 128 << 20 });
    assert.deepEqual(resized.overhead, { cpuShares: 10, memoryLimitInBytes: 1 << 20 });
    await rejectsWith(cri.runtime('UpdatePodSandboxResources', { pod_sandbox_id: 'f'.repeat(64), resources: { cpu_shares: 2 } }), grpc.status.NOT_FOUND);
    const neg = await rejectsWith(cri.runtime('UpdatePodSandboxResources', { pod_sandbox_id: id, resources: { cpu_shares: -2 } }), grpc.status.INVALID_ARGUMENT);
    assert.match(neg.details, /resources\.cpu_shares/);
    await remove(id);
    assert.ok(existsSync(logDir), "removing the pod leaves kubelet's log directory");
  });

  it('refuses bad settings, naming the field, and leaves nothing behind', async () => {
    const port = await freePort();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ port_mappings: [{ protocol: 'SCTP', container_port: 80, host_port: port }] }, /port_mappings\[0\].*SCTP/],
      [{ port_mappings: [{ container_port: 0, host_port: port }] }, /port_mappings\[0\].*container_port/],
      [{ port_mappings: [{ container_port: 80, host_port: 70000 }] }, /port_mappings\[0\].*host_port/],
      [{ port_mappings: [{ container_port: 80, host_port: port, host_ip: '::1' }] }, /port_mappings\[0\].*host_ip/],
      [{ log_directory: 'relative/logs' }, /log directory/],
      [{ linux: { cgroup_parent: 'kubepods.slice' } }, /cgroup parent/],
      [{ linux: { resources: { memory_limit_in_bytes: -5 } } }, /linux\.resources\.memory_limit_in_bytes/],
      [{ linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: 'relative.json' } } } }, /localhost_ref/],
      [{ linux: { security_context: { seccomp_profile_path: 'nonsense' } } }, /seccomp_profile_path/],
      [{ linux: { security_context: { namespace_options: { userns_options: { mode: 'POD' } } } } }, /userns_options/],
      [{ linux: { security_context: { run_as_user: { value: -1 } } } }, /run_as_user/],
    ];
    for (const [extra, message] of cases) {
      const err = await rejectsWith(cri.runtime('RunPodSandbox', { config: config(extra) }), grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, message);
    }
    await nothingLeft(port);
    assert.equal(await vethsOnBridge(), '');
  });
});
