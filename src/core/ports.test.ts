import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from './errors.ts';
import { exposedToMapping, formatPortLine, parsePublish } from './ports.ts';

describe('parsePublish', () => {
  it('reads docker -p forms', () => {
    assert.deepEqual(parsePublish('8080:80'), [{ hostIp: undefined, hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(parsePublish('80'), [{ hostIp: undefined, hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(parsePublish('127.0.0.1::53/udp'), [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 53, protocol: 'udp' }]);
    assert.deepEqual(parsePublish('127.0.0.1:8000-8001:9000-9001'), [
      { hostIp: '127.0.0.1', hostPort: 8000, containerPort: 9000, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 8001, containerPort: 9001, protocol: 'tcp' },
    ]);
    assert.deepEqual(parsePublish('[::1]:80:80'), [{ hostIp: '::1', hostPort: 80, containerPort: 80, protocol: 'tcp' }]);
  });
  it('rejects bad specs', () => {
    for (const bad of ['', 'x:80', '80/sctp', '1-3:5-6', '70000', '0', 'a:b:c:d']) assert.throws(() => parsePublish(bad), isInvalidArgument, bad);
  });
  it('formats port lines and exposed ports', () => {
    assert.equal(formatPortLine({ hostPort: 32768, containerPort: 80, protocol: 'tcp' }), '80/tcp -> 0.0.0.0:32768');
    assert.deepEqual(exposedToMapping('53/udp'), { hostPort: 0, containerPort: 53, protocol: 'udp' });
    assert.throws(() => exposedToMapping('x/tcp'), isInvalidArgument);
  });
});
