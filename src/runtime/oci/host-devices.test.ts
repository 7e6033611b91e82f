import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import { deviceMajor, deviceMinor, hostDevices } from './host-devices.ts';

test('device numbers split as glibc does, including large minors', () => {
  assert.equal(deviceMajor(0x103n), 1);
  assert.equal(deviceMinor(0x103n), 3);
  // makedev(259, 65536): minor bits above 8 live at 20+.
  const dev = (259n << 8n) | (65536n & 0xffn) | ((65536n & ~0xffn) << 12n);
  assert.equal(deviceMajor(dev), 259);
  assert.equal(deviceMinor(dev), 65536);
});

test('host devices include /dev/null as c 1:3 and skip pts, shm and console', async () => {
  const devs = await hostDevices(rootCtx());
  const dnull = devs.find((d) => d.path === '/dev/null');
  assert.deepEqual(dnull && { type: dnull.type, major: dnull.major, minor: dnull.minor }, { type: 'c', major: 1, minor: 3 });
  assert.ok(!devs.some((d) => d.path.startsWith('/dev/pts/') || d.path.startsWith('/dev/shm/') || d.path === '/dev/console'));
});
