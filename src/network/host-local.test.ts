import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { allocationOwner, releaseAllocation } from './host-local.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-host-local-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('host-local files', () => {
  it('reads the holder in both layouts', () => {
    assert.deepEqual(allocationOwner('abc\r\neth0'), { containerId: 'abc', ifName: 'eth0' });
    assert.deepEqual(allocationOwner('abc\n'), { containerId: 'abc', ifName: undefined });
  });

  it('releases an address only for its holder and interface', () => {
    mkdirSync(path.join(dir, 'berth-n'));
    const file = path.join(dir, 'berth-n', '10.1.0.2');
    writeFileSync(file, 'c1\r\neth1');
    assert.equal(releaseAllocation(dir, 'berth-n', '10.1.0.2', 'c2', 'eth1'), false);
    assert.equal(releaseAllocation(dir, 'berth-n', '10.1.0.2', 'c1', 'eth0'), false);
    assert.ok(existsSync(file));
    assert.equal(releaseAllocation(dir, 'berth-n', '10.1.0.2', 'c1', 'eth1'), true);
    assert.ok(!existsSync(file));
    assert.equal(releaseAllocation(dir, 'berth-n', '10.1.0.2', 'c1', 'eth1'), false, 'released already');
    writeFileSync(file, 'c3');
    assert.equal(releaseAllocation(dir, 'berth-n', '10.1.0.2', 'c3', 'eth0'), true, 'an older file names no interface');
  });
});
