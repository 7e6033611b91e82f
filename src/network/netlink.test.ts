import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ackErrno, delLinkRequest } from './netlink.ts';

describe('netlink', () => {
  it('asks RTM_DELLINK by name, with an ack', () => {
    const b = delLinkRequest('eth0', 7);
    assert.equal(b.length, 16 + 16 + 12);
    assert.equal(b.readUInt32LE(0), b.length);
    assert.equal(b.readUInt16LE(4), 17);
    assert.equal(b.readUInt16LE(6), 0x5);
    assert.equal(b.readUInt32LE(8), 7);
    assert.equal(b.readInt32LE(20), 0, 'no interface index: looked up by name');
    assert.equal(b.readUInt16LE(32), 9);
    assert.equal(b.readUInt16LE(34), 3);
    assert.equal(b.subarray(36, 41).toString('latin1'), 'eth0\0');
    assert.throws(() => delLinkRequest('a-name-longer-than-15', 1), TypeError);
    assert.throws(() => delLinkRequest('../x', 1), TypeError);
  });

  it('reads the answer to its own request', () => {
    const answer = (seq: number, errno: number) => {
      const b = Buffer.alloc(36);
      b.writeUInt32LE(36, 0);
      b.writeUInt16LE(2, 4);
      b.writeUInt32LE(seq, 8);
      b.writeInt32LE(-errno, 16);
      return b;
    };
    assert.equal(ackErrno(answer(3, 0), 3), 0);
    assert.equal(ackErrno(answer(3, 19), 3), 19);
    assert.equal(ackErrno(answer(4, 0), 3), undefined);
    assert.equal(ackErrno(Buffer.concat([answer(4, 1), answer(3, 0)]), 3), 0);
    assert.equal(ackErrno(Buffer.alloc(8), 3), undefined);
  });
});
