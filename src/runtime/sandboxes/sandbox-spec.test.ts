import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SandboxRecord } from '../../metadata/sandboxes.ts';
import type { SetupResult } from '../../network/types.ts';
import { sandboxSpec } from './sandbox-spec.ts';

const net: SetupResult = { mode: 'bridge', netnsPath: '/run/berth/netns/abc', hostname: 'web-host', hostsPath: '/h', resolvConfPath: '/r', hostnamePath: '/n', interfaces: [], ports: [] };
const rec = (namespaces: SandboxRecord['namespaces']): SandboxRecord => ({
  id: 'abc', namespace: 'k8s.io', name: 'web', uid: 'u', podNamespace: 'default', attempt: 0, hostname: 'web-host',
  labels: {}, annotations: {}, namespaces, network: namespaces.network === 'node' ? '' : 'bridge', ip: '', state: 'notready', createdAtNs: '1',
});
const spec = (namespaces: SandboxRecord['namespaces'], n: SetupResult = net) => sandboxSpec({ rec: rec(namespaces), net: n, rootfs: '/rootfs', user: { uid: 0, gid: 0 }, cgroupsPath: '/berth/k8s.io/abc' });

describe('sandboxSpec', () => {
  it('runs /pause on a read-only root with the pod hostname, its own namespaces and the netns joined by path', () => {
    const s = spec({ network: 'pod', pid: 'container', ipc: 'pod' });
    assert.deepEqual(s.process.args, ['/pause']);
    assert.deepEqual(s.root, { path: '/rootfs', readonly: true });
    assert.equal(s.hostname, 'web-host');
    assert.deepEqual(s.linux.namespaces, [{ type: 'mount' }, { type: 'network', path: '/run/berth/netns/abc' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }]);
    assert.equal(s.linux.cgroupsPath, '/berth/k8s.io/abc');
    // The default security settings: seccomp, masked paths, no privileged extras.
    assert.ok(s.linux.seccomp);
    // The pause binary is the host's own: its filter lists the host's architecture alone.
    assert.deepEqual(s.linux.seccomp.architectures, ['SCMP_ARCH_X86_64']);
    assert.ok(s.linux.seccomp.syscalls?.some((c) => c.names.includes('wait4')));
    assert.ok(s.linux.maskedPaths?.includes('/proc/kcore'));
    assert.ok(s.mounts.some((m) => m.destination === '/etc/resolv.conf' && m.source === '/r'));
  });

  it("shares the node's namespaces the pod asks for; the node's network brings the node's uts", () => {
    const s = spec({ network: 'node', pid: 'node', ipc: 'node' }, { ...net, mode: 'host', netnsPath: undefined });
    assert.deepEqual(s.linux.namespaces, [{ type: 'mount' }]);
    assert.equal(s.hostname, undefined);
  });

  const withSettings = (extra: Partial<SandboxRecord>, namespaces: SandboxRecord['namespaces'] = { network: 'pod', pid: 'container', ipc: 'pod' }) =>
    sandboxSpec({
      rec: { ...rec(namespaces), ...extra },
      net,
      rootfs: '/rootfs',
      user: { uid: 0, gid: 0, additionalGids: [5] },
      cgroupsPath: '/kubepods/pod1/abc',
      host: { capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'], devices: [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11 }] },
    });

  it("sets the pod's sysctls and refuses those that are not the pod's own", () => {
    const s = withSettings({ sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' } });
    assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' });
    assert.deepEqual(s.process.user.additionalGids, [5]);
    assert.throws(() => withSettings({ sysctls: { 'kernel.pid_max': '9' } }), /kernel\.pid_max/);
    assert.throws(() => withSettings({ sysctls: { 'kernel.shm_rmid_forced': '1' } }, { network: 'pod', pid: 'container', ipc: 'node' }), /IPC namespace/);
    assert.throws(() => withSettings({ sysctls: { 'net.core.somaxconn': '9' } }, { network: 'node', pid: 'container', ipc: 'pod' }), /network namespace/);
  });

  it('makes a privileged pause process: every capability berthd holds, no seccomp, the host devices, nothing masked', () => {
    const s = withSettings({ privileged: true });
    assert.deepEqual(s.process.capabilities?.bounding, ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN']);
    assert.equal(s.linux.seccomp, undefined);
    assert.equal(s.linux.maskedPaths, undefined);
    assert.ok(s.linux.devices?.some((d) => d.path === '/dev/kmsg'));
  });

  it('follows the seccomp choice: unconfined, or the loaded Localhost profile', () => {
    assert.equal(withSettings({ seccomp: 'unconfined' }).linux.seccomp, undefined);
    const local = sandboxSpec({
      rec: { ...rec({ network: 'pod', pid: 'container', ipc: 'pod' }), seccomp: 'localhost/p.json' },
      net,
      rootfs: '/rootfs',
      user: { uid: 0, gid: 0 },
      cgroupsPath: '/x',
      host: { seccompProfile: { defaultAction: 'SCMP_ACT_LOG', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] } },
    });
    // A profile the pod names is applied as written, its architectures too.
    assert.deepEqual(local.linux.seccomp, { defaultAction: 'SCMP_ACT_LOG', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] });
  });

  it("carries containerd's sandbox annotations, the declared resources among them", () => {
    const s = withSettings({ logDirectory: '/var/log/pods/x', resources: { cpuPeriod: 100000, cpuQuota: 50000, cpuShares: 512, memoryLimitInBytes: 1024 } });
    assert.deepEqual(s.annotations, {
      'io.kubernetes.cri.container-type': 'sandbox',
      'io.kubernetes.cri.sandbox-id': 'abc',
      'io.kubernetes.cri.sandbox-name': 'web',
      'io.kubernetes.cri.sandbox-namespace': 'default',
      'io.kubernetes.cri.sandbox-uid': 'u',
      'io.kubernetes.cri.sandbox-log-directory': '/var/log/pods/x',
      'io.kubernetes.cri.sandbox-cpu-period': '100000',
      'io.kubernetes.cri.sandbox-cpu-quota': '50000',
      'io.kubernetes.cri.sandbox-cpu-shares': '512',
      'io.kubernetes.cri.sandbox-memory': '1024',
    });
  });
});
