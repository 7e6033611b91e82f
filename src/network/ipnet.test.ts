import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../core/errors.ts';
import { firstHost, formatSubnet, overlaps, parseSubnet, pickSubnet, validateGateway } from './ipnet.ts';

describe('ipnet', () => {
  it('parses subnets and rejects host bits and bad prefixes', () => {
    assert.equal(formatSubnet(parseSubnet('10.1.2.0/24')), '10.1.2.0/24');
    assert.equal(firstHost(parseSubnet('10.1.2.0/24')), '10.1.2.1');
    assert.throws(() => parseSubnet('10.1.2.3/24'), (e) => isInvalidArgument(e) && /10\.1\.2\.0\/24/.test((e as Error).message));
    assert.throws(() => parseSubnet('10.1.2.0/31'), isInvalidArgument);
    assert.throws(() => parseSubnet('300.1.2.0/24'), isInvalidArgument);
    assert.throws(() => parseSubnet('banana'), isInvalidArgument);
  });
  it('detects overlaps in both directions', () => {
    assert.ok(overlaps(parseSubnet('10.0.0.0/8'), parseSubnet('10.5.0.0/16')));
    assert.ok(overlaps(parseSubnet('10.5.0.0/16'), parseSubnet('10.0.0.0/8')));
    assert.ok(!overlaps(parseSubnet('10.5.0.0/24'), parseSubnet('10.5.1.0/24')));
  });
  it('checks gateways', () => {
    const s = parseSubnet('192.168.5.0/24');
    validateGateway(s, '192.168.5.254');
    assert.throws(() => validateGateway(s, '192.168.6.1'), isInvalidArgument);
    assert.throws(() => validateGateway(s, '192.168.5.0'), isInvalidArgument);
    assert.throws(() => validateGateway(s, '192.168.5.255'), isInvalidArgument);
  });
  it('picks the first free subnet of a pool', () => {
    const pool = parseSubnet('10.90.0.0/22');
    assert.equal(formatSubnet(pickSubnet(pool, 24, [])!), '10.90.0.0/24');
    assert.equal(formatSubnet(pickSubnet(pool, 24, [parseSubnet('10.90.0.0/23')])!), '10.90.2.0/24');
    assert.equal(pickSubnet(pool, 24, [parseSubnet('10.0.0.0/8')]), undefined);
  });
});
