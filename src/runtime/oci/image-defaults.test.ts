import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../../core/errors.ts';
import { imageDefaults } from './image-defaults.ts';

const image = {
  User: 'app',
  Labels: { maintainer: 'x', tier: 'image' },
  StopSignal: 'SIGQUIT',
  Volumes: { '/data': {}, '/cache/': {}, '/logs': {} },
  ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8080': {} },
};

describe('imageDefaults', () => {
  it('uses the image values when the container gives none', () => {
    const d = imageDefaults(image, { image: 'x' });
    assert.deepEqual(d.labels, { maintainer: 'x', tier: 'image' });
    assert.equal(d.stopSignal, 'SIGQUIT');
    assert.equal(d.user, 'app');
    assert.deepEqual(d.anonymousVolumes, ['/data', '/cache', '/logs']);
    assert.deepEqual(d.publishAllPorts, []);
    assert.deepEqual(imageDefaults({}, { image: 'x' }), { labels: {}, stopSignal: 'SIGTERM', user: '', anonymousVolumes: [], publishAllPorts: [] });
  });
  it('refuses an image VOLUME on the container root', () => {
    for (const v of ['', '/', '/.']) {
      assert.throws(() => imageDefaults({ Volumes: { '/data': {}, [v]: {} } }, { image: 'x' }), (e) => isInvalidArgument(e) && (e as Error).message.endsWith(`invalid mount config for type "volume": invalid specification: destination can't be '/'`));
    }
  });
  it('lets the container win', () => {
    const d = imageDefaults(image, {
      image: 'x', user: '0', stopSignal: 'SIGINT', labels: { tier: 'web' },
      mounts: [{ type: 'volume', source: 'v', target: '/data/' }], tmpfs: { '/cache': '' },
    });
    assert.deepEqual(d.labels, { maintainer: 'x', tier: 'web' });
    assert.equal(d.stopSignal, 'SIGINT');
    assert.equal(d.user, '0');
    assert.deepEqual(d.anonymousVolumes, ['/logs']);
  });
  it('publishes the exposed ports not already published with -P', () => {
    const d = imageDefaults(image, { image: 'x', network: { mode: 'bridge', publishAll: true, ports: [{ hostPort: 8000, containerPort: 80, protocol: 'tcp' }] } });
    assert.deepEqual(d.publishAllPorts, [{ hostPort: 0, containerPort: 53, protocol: 'udp' }, { hostPort: 0, containerPort: 8080, protocol: 'tcp' }]);
  });
});
