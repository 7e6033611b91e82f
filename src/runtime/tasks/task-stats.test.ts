import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNetDev } from './task-stats.ts';

test('/proc/PID/net/dev as counters per interface, loopback left out', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      656       8    3    4    0     0       0          0
`;
  assert.deepEqual(parseNetDev(text), {
    eth0: { rxBytes: 1296, rxPackets: 16, rxErrors: 1, rxDropped: 2, txBytes: 656, txPackets: 8, txErrors: 3, txDropped: 4 },
  });
  assert.deepEqual(parseNetDev(''), {});
});
