import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'smol-toml';
import { cniConflist, containerdToml, hostsToml } from './peer-config.ts';

// Plain objects (the parser's tables have no prototype), so deepEqual compares values only.
const toml = (s: string): any => JSON.parse(JSON.stringify(parse(s)));

test('cniConflist: bridge with host-local on our subnet and IPAM store, then portmap', () => {
  const c = JSON.parse(cniConflist({ name: 'n1', bridge: 'bbx1', subnet: '10.210.3', dataDir: '/w/ipam' }));
  assert.equal(c.name, 'n1');
  assert.deepEqual(
    c.plugins.map((p: { type: string }) => p.type),
    ['bridge', 'portmap'],
  );
  const [bridge, portmap] = c.plugins;
  assert.equal(bridge.bridge, 'bbx1');
  assert.equal(bridge.ipMasq, true);
  assert.deepEqual(bridge.ipam.ranges, [[{ subnet: '10.210.3.0/24', gateway: '10.210.3.1' }]]);
  assert.equal(bridge.ipam.dataDir, '/w/ipam');
  assert.deepEqual(portmap.capabilities, { portMappings: true });
});

test('containerdToml: private paths; the CRI plugin disabled unless asked for', () => {
  const off = toml(containerdToml({ root: '/m/root', state: '/r/state', socket: '/r/c.sock' }));
  assert.equal(off.root, '/m/root');
  assert.equal(off.state, '/r/state');
  assert.equal(off.grpc.address, '/r/c.sock');
  assert.equal(off.ttrpc.address, '/r/c.sock.ttrpc');
  assert.ok(off.disabled_plugins.includes('io.containerd.grpc.v1.cri'));
  assert.equal(off.plugins['io.containerd.grpc.v1.cri'], undefined);
});

test('containerdToml with the CRI: CNI dirs, sandbox image and its plain-HTTP registry, overlayfs, runc state under our state dir', () => {
  const cfg = toml(
    containerdToml({ root: '/m/root', state: '/r/state', socket: '/r/c.sock', cri: { cniConfDir: '/w/net.d', cniBinDir: '/usr/lib/cni', sandboxImage: '127.0.0.1:5555/bench/pause:1' } }),
  );
  assert.ok(!cfg.disabled_plugins.includes('io.containerd.grpc.v1.cri'));
  const cri = cfg.plugins['io.containerd.grpc.v1.cri'];
  assert.equal(cri.sandbox_image, '127.0.0.1:5555/bench/pause:1');
  assert.equal(cri.restrict_oom_score_adj, true);
  assert.deepEqual(cri.cni, { bin_dir: '/usr/lib/cni', conf_dir: '/w/net.d', max_conf_num: 1 });
  assert.equal(cri.containerd.snapshotter, 'overlayfs');
  assert.equal(cri.containerd.runtimes.runc.runtime_type, 'io.containerd.runc.v2');
  assert.equal(cri.containerd.runtimes.runc.options.Root, '/r/state/runc');
  assert.deepEqual(cri.registry.mirrors['127.0.0.1:5555'].endpoint, ['http://127.0.0.1:5555']);
});

test('hostsToml: the registry over plain HTTP', () => {
  const h = toml(hostsToml('127.0.0.1:5555'));
  assert.equal(h.server, 'http://127.0.0.1:5555');
  assert.deepEqual(h.host['http://127.0.0.1:5555'].capabilities, ['pull', 'resolve', 'push']);
});
