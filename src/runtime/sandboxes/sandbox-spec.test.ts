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
    assert.ok(s.linux.maskedPaths?.includes('/proc/kcore'));
    assert.ok(s.mounts.some((m) => m.destination === '/etc/resolv.conf' && m.source === '/r'));
  });

  it("shares the node's namespaces the pod asks for; the node's network brings the node's uts", () => {
    const s = spec({ network: 'node', pid: 'node', ipc: 'node' }, { ...net, mode: 'host', netnsPath: undefined });
    assert.deepEqual(s.linux.namespaces, [{ type: 'mount' }]);
    assert.equal(s.hostname, undefined);
  });
});
