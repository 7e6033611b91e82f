import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NetworkRecord } from '../metadata/networks.ts';
import { pluginStdin } from './cni.ts';
import { bridgeConflist, cniNameOf, isOwnBridgeConflist, portMappingArg } from './conflist.ts';

const net: NetworkRecord = {
  id: 'ab'.repeat(32),
  name: 'web',
  driver: 'bridge',
  bridge: 'br-abababababab',
  subnet: '10.7.0.0/24',
  gateway: '10.7.0.1',
  internal: false,
  labels: {},
  options: {},
  createdAt: '',
};

describe('conflist', () => {
  it('knows its own list to the letter: NAT or a firewall by plugins, another IPAM dir or any key of someone else make it foreign', () => {
    const dir = '/r/network/ipam';
    assert.ok(isOwnBridgeConflist(bridgeConflist(net, { ipamDataDir: dir, mtu: 1400 }), dir));
    assert.ok(isOwnBridgeConflist(bridgeConflist({ ...net, internal: true }, { ipamDataDir: dir, mtu: 0 }), dir));
    assert.ok(!isOwnBridgeConflist(bridgeConflist(net, { ipamDataDir: dir, mtu: 0, pluginNat: true }), dir));
    assert.ok(!isOwnBridgeConflist(bridgeConflist(net, { ipamDataDir: dir, mtu: 0, firewall: true }), dir));
    assert.ok(!isOwnBridgeConflist(bridgeConflist(net, { ipamDataDir: dir, mtu: 0 }), '/other/ipam'));
    const own = bridgeConflist(net, { ipamDataDir: dir, mtu: 0 });
    assert.ok(!isOwnBridgeConflist({ ...own, name: 'mynet' }, dir));
    assert.ok(!isOwnBridgeConflist({ ...own, plugins: [{ ...own.plugins[0], macspoofchk: true }] }, dir));
    assert.ok(!isOwnBridgeConflist({ ...own, plugins: [{ ...own.plugins[0], ipam: { ...(own.plugins[0].ipam as object), type: 'dhcp' } }] }, dir));
    assert.ok(!isOwnBridgeConflist({ ...own, plugins: [{ ...own.plugins[0], ipMasq: undefined }] }, dir));
  });

  it('is the bridge plugin (host-local in berth\'s dir; NAT is host-nat.ts\'s) under a unique CNI name', () => {
    const l = bridgeConflist(net, { ipamDataDir: '/r/network/ipam', mtu: 1400 });
    assert.equal(l.name, cniNameOf(net.id));
    assert.equal(l.name, 'berth-abababababab');
    assert.deepEqual(
      l.plugins.map((p) => p.type),
      ['bridge'],
    );
    const b = l.plugins[0] as Record<string, any>;
    assert.equal(b.bridge, 'br-abababababab');
    assert.equal(b.ipMasq, false);
    assert.equal(b.isGateway, true);
    assert.equal(b.mtu, 1400);
    assert.equal(b.ipam.dataDir, '/r/network/ipam');
    assert.deepEqual(b.ipam.ranges, [[{ subnet: '10.7.0.0/24', gateway: '10.7.0.1' }]]);
  });
  it('chains the firewall plugin when asked', () => {
    assert.deepEqual(
      bridgeConflist(net, { ipamDataDir: '/d', mtu: 0, firewall: true }).plugins.map((p) => p.type),
      ['bridge', 'firewall'],
    );
  });
  it('leaves NAT to ipMasq and portmap when asked (UDP ports: portmap also clears stale conntrack entries)', () => {
    const l = bridgeConflist(net, { ipamDataDir: '/d', mtu: 0, pluginNat: true });
    assert.deepEqual(
      l.plugins.map((p) => p.type),
      ['bridge', 'portmap'],
    );
    assert.equal((l.plugins[0] as Record<string, any>).ipMasq, true);
    const caps = { portMappings: [portMappingArg({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' })] };
    assert.deepEqual(pluginStdin(l, l.plugins[1], caps, undefined).runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' }] });
    assert.equal(portMappingArg({ hostIp: '0.0.0.0', hostPort: 1, containerPort: 2, protocol: 'udp' }).hostIP, undefined);
  });
  it('internal networks get no NAT and no default route', () => {
    const b = bridgeConflist({ ...net, internal: true }, { ipamDataDir: '/d', mtu: 0 }).plugins[0] as Record<string, any>;
    assert.equal(b.ipMasq, false);
    assert.equal(b.isGateway, false);
    assert.deepEqual(b.ipam.routes, []);
    assert.equal(b.mtu, undefined);
  });
  it('passes runtimeConfig only for declared capabilities, with name, version and prevResult', () => {
    const l = bridgeConflist(net, { ipamDataDir: '/d', mtu: 0, firewall: true });
    const caps = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], ips: ['10.7.0.9/24'] };
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.7.0.9/24' }] };
    const fw = pluginStdin(l, l.plugins[1], caps, prev);
    assert.equal(fw.name, l.name);
    assert.equal(fw.cniVersion, '1.0.0');
    assert.deepEqual(fw.prevResult, prev);
    assert.equal(fw.runtimeConfig, undefined);
    const br = pluginStdin(l, l.plugins[0], caps, undefined);
    assert.deepEqual(br.runtimeConfig, { ips: ['10.7.0.9/24'] });
    assert.equal(br.prevResult, undefined);
  });
});
