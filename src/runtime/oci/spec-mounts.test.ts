import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../../core/errors.ts';
import { checkMountTarget, cleanPath, composeMounts, etcFileMounts, mergeMountOptions, resolvedToOci, standardMounts, tmpfsMount } from './spec-mounts.ts';

describe('spec mounts', () => {
  it('cleans paths', () => {
    assert.equal(cleanPath('/a//b/./c/'), '/a/b/c');
    assert.equal(cleanPath('/a/../../b'), '/b');
    assert.equal(cleanPath('/'), '/');
  });
  it('merges options, user options replacing opposites and same keys', () => {
    assert.deepEqual(mergeMountOptions(['noexec', 'nosuid', 'nodev'], ['exec', 'size=1m']), ['nosuid', 'nodev', 'exec', 'size=1m']);
    assert.deepEqual(mergeMountOptions(['mode=755', 'size=64k'], ['size=1m', 'mode=1777']), ['size=1m', 'mode=1777']);
    assert.deepEqual(mergeMountOptions(['rw'], ['ro', '']), ['ro']);
  });
  it('makes --tmpfs mounts noexec,nosuid,nodev by default', () => {
    assert.deepEqual(tmpfsMount('/run', ''), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev'] });
    assert.deepEqual(tmpfsMount('/run', 'rw,size=10m,mode=700').options, ['noexec', 'nosuid', 'nodev', 'rw', 'size=10m', 'mode=700']);
  });
  it('converts resolved binds and tmpfs', () => {
    assert.deepEqual(resolvedToOci({ type: 'bind', source: '/h', target: '/c', options: ['Z', 'slave'] }), {
      destination: '/c', type: 'bind', source: '/h', options: ['rbind', 'slave', 'rw'],
    });
    assert.deepEqual(resolvedToOci({ type: 'tmpfs', target: '/t', readOnly: true, options: ['size=1024'] }), {
      destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1024', 'ro'],
    });
    assert.throws(() => resolvedToOci({ type: 'bind', target: '/c' }), isInvalidArgument);
  });
  it('binds the /etc files read-only when asked', () => {
    assert.deepEqual(etcFileMounts({ hosts: '/h' }, true), [{ destination: '/etc/hosts', type: 'bind', source: '/h', options: ['rbind', 'rprivate', 'ro'] }]);
    assert.deepEqual(etcFileMounts({}), []);
  });
  it('checks a destination as docker does', () => {
    const msg = (type: string, why: string) => (e: unknown) => isInvalidArgument(e) && (e as Error).message === `invalid mount config for type "${type}": ${why}`;
    assert.throws(() => checkMountTarget('bind', '/'), msg('bind', "invalid specification: destination can't be '/'"));
    assert.throws(() => checkMountTarget('volume', '/data/..'), msg('volume', "invalid specification: destination can't be '/'"));
    assert.throws(() => checkMountTarget('tmpfs', ''), msg('tmpfs', 'field Target must not be empty'));
    assert.throws(() => checkMountTarget('bind', 'data'), msg('bind', "invalid mount path: 'data' mount path must be absolute"));
    checkMountTarget('bind', '/data');
  });
  it('a user /dev replaces every standard mount below it', () => {
    const out = composeMounts(standardMounts(), [], [{ destination: '/dev', type: 'bind', source: '/dev', options: ['rbind'] }]);
    assert.deepEqual(out.map((m) => m.destination), ['/proc', '/sys', '/sys/fs/cgroup', '/dev']);
  });
  it('a user mount replaces an /etc file at the same place', () => {
    const out = composeMounts([], etcFileMounts({ hosts: '/a', resolvConf: '/r' }), [{ destination: '/etc/hosts', type: 'bind', source: '/mine' }]);
    assert.deepEqual(out.map((m) => m.source), ['/r', '/mine']);
  });
  it('privileged makes /sys and the cgroup mount writable', () => {
    const sys = standardMounts({ privileged: true }).filter((m) => m.destination.startsWith('/sys'));
    assert.ok(sys.every((m) => m.options?.includes('rw') && !m.options.includes('ro')));
  });
});
