import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointRecord, NetworkRecord } from './networks.ts';
import { NetworkStore } from './networks.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

const net = (id: string, name: string, bridge: string): NetworkRecord => ({
  id,
  name,
  driver: 'bridge',
  bridge,
  subnet: '10.5.0.0/24',
  gateway: '10.5.0.1',
  internal: false,
  labels: { a: 'b' },
  options: {},
  createdAt: new Date().toISOString(),
});
const ep = (containerId: string, name: string): EndpointRecord => ({
  containerId,
  namespace: 'default',
  name,
  hostname: name,
  mode: 'n1',
  netnsPath: `/run/netns/${containerId}`,
  ownsNetns: true,
  dir: `/d/${containerId}`,
  dns: { servers: [], search: [], options: [], extraHosts: ['x:1.2.3.4'], domainname: '' },
  createdAt: new Date().toISOString(),
});
const idA = 'aa11' + '0'.repeat(60);
const idB = 'aa22' + '0'.repeat(60);

test('networks: records, lookups, attachments and cascades survive a reopen', async () => {
  const t = await tempDb();
  try {
    let s = new NetworkStore(t.db);
    s.createNetwork(net(idA, 'n1', 'br-a'));
    s.createNetwork({ ...net(idB, 'n2', 'br-b'), hostBridge: { hadGateway: true } });
    await rejectsKind(() => s.createNetwork(net('cc' + '0'.repeat(62), 'n1', 'br-c')), 'AlreadyExists');
    assert.equal(s.findNetwork('n1')?.id, idA);
    assert.equal(s.findNetwork(idB)?.name, 'n2');
    assert.equal(s.findNetwork('aa2')?.name, 'n2');
    await rejectsKind(() => s.findNetwork('aa'), 'InvalidArgument');
    assert.equal(s.findNetwork('zz'), undefined);

    s.putEndpoint(ep('c1' + '0'.repeat(62), 'web'));
    s.putAttachment({ containerId: 'c1' + '0'.repeat(62), networkId: idA, ifName: 'eth0', ip: '10.5.0.2', prefixLen: 24, gateway: '10.5.0.1', mac: 'aa', aliases: ['w'], ports: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] });
    // a network with attachments cannot be deleted under the service's feet
    assert.throws(() => s.deleteNetwork(idA));

    t.db.close();
    const { MetadataDb } = await import('./db.ts');
    const db2 = new MetadataDb(t.file);
    s = new NetworkStore(db2);
    assert.equal(s.findEndpoint('default', 'web')?.dns.extraHosts[0], 'x:1.2.3.4');
    assert.equal(s.findEndpoint('default', 'c1')?.name, 'web');
    assert.deepEqual(s.findNetwork('n2')?.hostBridge, { hadGateway: true });
    assert.equal(s.findNetwork('n1')?.hostBridge, undefined);
    assert.equal(s.findEndpoint('other', 'web'), undefined);
    assert.deepEqual(s.listAttachments({ networkId: idA })[0].ports, [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }]);
    s.deleteEndpoint('c1' + '0'.repeat(62));
    assert.deepEqual(s.listAttachments(), []);
    s.deleteNetwork(idA);
    assert.deepEqual(
      s.listNetworks().map((n) => n.name),
      ['n2'],
    );
    db2.close();
  } finally {
    await t.cleanup();
  }
});
