import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../../core/errors.ts';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capabilitiesFromMask, capabilityMask, containerCapabilities, normalizeCapabilities } from './caps.ts';

describe('capabilities', () => {
  it('has Docker default set of 14 with the classic mask', () => {
    assert.equal(DEFAULT_CAPABILITIES.length, 14);
    assert.equal(capabilityMask(DEFAULT_CAPABILITIES), '00000000a80425fb');
    assert.deepEqual(containerCapabilities({}), [...DEFAULT_CAPABILITIES]);
  });
  it('knows bit numbers up to CAP_CHECKPOINT_RESTORE', () => {
    assert.equal(ALL_CAPABILITIES.length, 41);
    assert.equal(ALL_CAPABILITIES[21], 'CAP_SYS_ADMIN');
    assert.equal(ALL_CAPABILITIES[40], 'CAP_CHECKPOINT_RESTORE');
    assert.equal(capabilityMask(ALL_CAPABILITIES), '000001ffffffffff');
    assert.deepEqual(capabilitiesFromMask('00000000a80425fb').sort(), [...DEFAULT_CAPABILITIES].sort());
  });
  it('normalizes case and prefix', () => {
    assert.deepEqual(normalizeCapabilities(['net_admin', 'CAP_SYS_TIME', 'Sys_Ptrace', 'all']), ['CAP_NET_ADMIN', 'CAP_SYS_TIME', 'CAP_SYS_PTRACE', 'ALL']);
  });
  it('rejects an unknown capability', () => {
    assert.throws(() => containerCapabilities({ capAdd: ['bogus'] }), (e) => isInvalidArgument(e) && /unknown capability: "CAP_BOGUS"/.test((e as Error).message));
    assert.throws(() => containerCapabilities({ capDrop: ['CAP_NOPE'] }), isInvalidArgument);
  });
  it('adds and drops', () => {
    const caps = containerCapabilities({ capAdd: ['NET_ADMIN'], capDrop: ['chown', 'CAP_NET_RAW'] });
    assert.ok(caps.includes('CAP_NET_ADMIN'));
    assert.ok(!caps.includes('CAP_CHOWN'));
    assert.ok(!caps.includes('CAP_NET_RAW'));
    assert.equal(caps.length, 13);
  });
  it('drop ALL keeps only the added ones; add ALL gives all but the dropped', () => {
    assert.deepEqual(containerCapabilities({ capDrop: ['ALL'], capAdd: ['kill'] }), ['CAP_KILL']);
    assert.deepEqual(containerCapabilities({ capDrop: ['all'] }), []);
    const all = containerCapabilities({ capAdd: ['ALL'], capDrop: ['SYS_ADMIN'] });
    assert.equal(all.length, 40);
    assert.ok(!all.includes('CAP_SYS_ADMIN'));
  });
  it('privileged gets everything available, ignoring add/drop', () => {
    assert.equal(containerCapabilities({ privileged: true, capDrop: ['ALL'] }).length, 41);
    const avail = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
    assert.deepEqual(containerCapabilities({ privileged: true, available: avail }), avail);
    assert.ok(!containerCapabilities({ capAdd: ['ALL'], available: avail }).includes('CAP_SYS_RESOURCE'));
  });
  it('does not duplicate a default capability added again', () => {
    assert.equal(containerCapabilities({ capAdd: ['CHOWN'] }).length, 14);
  });
});
